"""A typer group that imports a command's module only when that command runs (timm-style lazy table).

``xai --help`` lists every command from a table of ``name -> ("module:attr", one-line help)``
without importing any command module (several load torch and captum); ``xai CMD ...``
imports only ``CMD``'s module. ``tests/test_imports.py`` checks that the table's help
matches each command's own docstring.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup


def load_command(name: str, target: str) -> click.Command:
    """Import ``"module:attr"`` (a typer app or a command function) as the click command ``name``."""
    module, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    if isinstance(obj, typer.Typer):
        command: click.Command = typer.main.get_group(obj)
    else:  # a plain command function: the same conversion as app.command(name)(obj)
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """:class:`TyperGroup` whose ``lazy_commands`` are loaded on first use (see module docstring)."""

    lazy_commands: Mapping[str, tuple[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        # the table's order (as registered commands keep theirs), then commands added eagerly
        return [*self.lazy_commands, *(name for name in self.commands if name not in self.lazy_commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return self.commands.get(cmd_name)
        target, help_text = self.lazy_commands[cmd_name]
        if self._listing:  # the root's --help needs only the name and the line of help
            return TyperCommand(name=cmd_name, help=help_text)
        command = load_command(cmd_name, target)
        self.commands[cmd_name] = command
        return command

    @contextmanager
    def _list_only(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self._list_only():
            super().format_help(ctx, formatter)
