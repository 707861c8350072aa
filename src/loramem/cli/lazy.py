"""Command groups imported only when run: `loramem --help` lists them from LAZY_GROUPS without
loading their modules (the `bench` studies import torch, transformers and every study at once)."""

from __future__ import annotations

import importlib
from typing import NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class LazyGroup(NamedTuple):
    """A group's modules (its app first; the others add commands to it) and its help."""

    modules: tuple[str, ...]
    app: str  # the typer.Typer's name in modules[0]
    help: str


LAZY_GROUPS = {
    "bench": LazyGroup(("loramem.cli.bench", "loramem.cli.knowledge_base"), "bench_app",
                       "Benchmarks: measure and print numbers (a table, and JSON with --out)."),
}


class _Listed(TyperCommand):
    """What a lazy group shows in its parent's help: its name and help, nothing imported."""


def load_group(name: str) -> TyperGroup:
    """Import the lazy group `name` and return its click group."""
    lazy = LAZY_GROUPS[name]
    modules = [importlib.import_module(m) for m in lazy.modules]
    group = typer.main.get_group(getattr(modules[0], lazy.app))
    group.name, group.help = name, lazy.help
    return group


class LoramemGroup(TyperGroup):
    """The top-level group: its own commands, then LAZY_GROUPS, loaded when one is run."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_GROUPS if n not in self.commands)]

    def get_command(self, ctx: typer.Context, name: str) -> TyperCommand | TyperGroup | None:
        if name in LAZY_GROUPS and name not in self.commands:
            return _Listed(name, help=LAZY_GROUPS[name].help)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Listed):
            command = self.commands[name] = load_group(name)
        return name, command, rest
