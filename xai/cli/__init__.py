"""The ``xai`` command: typer apps joined here; ``XaiError`` becomes exit code 2."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from xai import __version__
from xai.cli.audit import audit
from xai.cli.bias import bias_app
from xai.cli.check import check
from xai.cli.daam import daam_command
from xai.cli.dream import dream_command
from xai.cli.explain import explain
from xai.cli.fairness import fairness
from xai.cli.init import init
from xai.cli.invert import invert_command
from xai.cli.project import project_command
from xai.cli.rollout import rollout
from xai.cli.sanity import sanity
from xai.cli.zoo import zoo_app
from xai.errors import XaiError


class _XaiGroup(TyperGroup):
    """Root group: any :class:`XaiError` is one line on stderr and exit code 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except XaiError as exc:
            message = " ".join(str(exc).split())
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_XaiGroup,
    name="xai",
    help="Explainability and ethics audits for PyTorch models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xai-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Explainability and ethics audits for PyTorch models."""


app.command("audit")(audit)
app.command("check")(check)
app.command("daam")(daam_command)
app.command("dream")(dream_command)
app.command("explain")(explain)
app.command("fairness")(fairness)
app.command("init")(init)
app.command("invert")(invert_command)
app.command("project")(project_command)
app.command("sanity")(sanity)
app.command("rollout")(rollout)
app.add_typer(zoo_app, name="zoo")
app.add_typer(bias_app, name="bias")


def main() -> None:
    """Console-script entry point."""
    app()
