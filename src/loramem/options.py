"""Settings a user sets by name (a CLI flag, an HTTP field): dataclass fields that carry their help.

A settings dataclass (`TrainConfig`, `KVSettings`, `RagSettings`) is the one place an option is
declared: its name, type, default, help and choices. The command line and the server build their
flags and request fields from it, so a new option is one new field. A field without `help`
metadata is internal (e.g. `KVSettings.seed`) and is offered to no user.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass


def option(default: object, help: str, choices: Sequence[str] = ()) -> typing.Any:
    """A dataclass field the user may set, with its help and (for a name) its valid choices."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": tuple(choices)})


@dataclass(frozen=True)
class UserOption:
    """One user-settable field of a settings dataclass."""

    name: str
    type: type
    default: object
    help: str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """The help with the default, and the choices when the value is a name."""
        if self.choices:
            return f"{self.help}: " + " | ".join(f"{c} (default)" if c == self.default else c for c in self.choices)
        return f"{self.help} (default {self.default})"


def user_options(settings: type) -> list[UserOption]:
    """The fields of the dataclass `settings` that carry help, in declaration order."""
    hints = typing.get_type_hints(settings)
    return [UserOption(f.name, hints[f.name], f.default, f.metadata["help"], tuple(f.metadata.get("choices", ())))
            for f in dataclasses.fields(settings) if "help" in f.metadata]


def user_option(settings: type, name: str) -> UserOption:
    """The user option `name` of `settings` (KeyError names the class when there is none)."""
    for found in user_options(settings):
        if found.name == name:
            return found
    raise KeyError(f"{settings.__name__} has no user option {name!r}")
