"""The ``xai`` command: typer apps joined here, imported lazily; :mod:`xai.cli._edge` maps failures to exit codes."""

from __future__ import annotations

import typer

from xai import __version__
from xai.cli._edge import EdgeGroup, set_flags
from xai.cli._lazy import LazyGroup


class _XaiGroup(EdgeGroup, LazyGroup):
    """Root group: exit codes and one error line (:class:`EdgeGroup`), commands imported on use (:class:`LazyGroup`)."""


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
    debug: bool = typer.Option(False, "--debug", help="On an error, print the traceback too "
                               "(also: XAI_DEBUG=1)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' warnings (torch, captum, "
                                 "sklearn ...) on stderr."),
) -> None:
    """Explainability and ethics audits for PyTorch models."""
    set_flags(debug=debug, verbose=verbose)


# name -> ("module:attr", the command's one-line help): `xai --help` lists these without importing
# any command module (several import torch); `xai NAME` imports NAME's module only (xai/cli/_lazy.py).
# Listed in this order.
_XaiGroup.lazy_commands = {
    "audit": ("xai.cli.audit:audit",
              "Train or load the models, explain them, probe them for bias, write the report."),
    "check": ("xai.cli.check:check",
              "Run audits and their gates; exit 0 when every gate passes, 1 when one fails, 2 on bad input."),
    "daam": ("xai.cli.daam:daam_command",
             "Generate images of one class and map each prompt token's cross-attention onto them (DAAM)."),
    "dream": ("xai.cli.dream:dream_command",
              "Optimise an input that maximises one channel, neuron, layer or class of an image model."),
    "explain": ("xai.cli.explain:explain", "Explain a model's outputs with one attribution method."),
    "fairness": ("xai.cli.fairness:fairness",
                 "Per-group accuracy, selection rate, TPR, FPR, disparities and bootstrap intervals."),
    "init": ("xai.cli.init:init",
             "Scaffold zoo/, audits/ (a sample spec), reports/baselines/ and a GitHub Actions workflow."),
    "invert": ("xai.cli.invert:invert_command",
               "Reconstruct an input from a layer's features, a texture from Gram matrices, or transfer a style."),
    "methods": ("xai.cli.methods:methods",
                "List every method with its kind, capabilities and options, or those that apply to one model."),
    "project": ("xai.cli.project:project_command",
                "Map a layer's activations to 2-D; silhouette scores say which columns it separates."),
    "sanity": ("xai.cli.sanity:sanity",
               "Check a method's explanations: deletion/insertion, weight randomisation, infidelity."),
    "rollout": ("xai.cli.rollout:rollout",
                "Which input patches (or tokens) the CLS token, or the pooled sentence, draws on through every "
                "attention layer."),
    "zoo": ("xai.cli.zoo:zoo_app", "List, train and inspect the model zoo."),
    "bias": ("xai.cli.bias:bias_app", "Bias probes of word embeddings and text classifiers."),
}


def main() -> None:
    """Console-script entry point."""
    app()
