"""A typer group that imports a command's module only when that command runs (timm-style lazy table).

``xai --help`` lists every command from a table of ``name -> ("module:attr", one-line help)``
without importing any command module (several load torch and captum); ``xai CMD ...``
imports only ``CMD``'s module. ``tests/test_imports.py`` checks that the table's help
matches each command's own docstring.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
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


class LazyCommands(MutableMapping[str, click.Command]):
    """``group.commands`` that knows the lazy names and loads a command when it is looked up.

    Code that walks ``group.commands`` (tests, documentation tools) still sees every command.
    """

    def __init__(self, loaded: MutableMapping[str, click.Command], table: Mapping[str, tuple[str, str]]) -> None:
        self.loaded = loaded
        self.table = table

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded and name in self.table:
            self.loaded[name] = load_command(name, self.table[name][0])
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self.table

    def __iter__(self) -> Iterator[str]:
        # the table's order (as registered commands keep theirs), then commands added eagerly
        return iter([*self.table, *(name for name in self.loaded if name not in self.table)])

    def __len__(self) -> int:
        return len({*self.table, *self.loaded})


class LazyGroup(TyperGroup):
    """:class:`TyperGroup` whose ``lazy_commands`` are loaded on first use (see module docstring)."""

    lazy_commands: Mapping[str, tuple[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.commands, self.lazy_commands)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        commands = self.commands
        if self._listing and isinstance(commands, LazyCommands) and cmd_name not in commands.loaded \
                and cmd_name in commands.table:  # the root's --help needs only the name and the line of help
            return TyperCommand(name=cmd_name, help=commands.table[cmd_name][1])
        return commands.get(cmd_name)

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
