"""The ``xai`` command: typer apps joined here; :mod:`xai.cli._edge` maps every failure to its exit code."""

from __future__ import annotations

import typer

from xai import __version__
from xai.cli._edge import EdgeGroup, set_flags
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

app = typer.Typer(
    cls=EdgeGroup,
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
    debug: bool = typer.Option(False, "--debug", help="On an error, print the traceback too "
                               "(also: XAI_DEBUG=1)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' warnings (torch, captum, "
                                 "sklearn ...) on stderr."),
) -> None:
    """Explainability and ethics audits for PyTorch models."""
    set_flags(debug=debug, verbose=verbose)


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
