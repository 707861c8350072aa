"""One registry helper for everything a user picks by string (CLI, YAML, HTTP)."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterable
from typing import Generic, TypeVar

from loramem.errors import LoramemError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps unique names to classes; unknown names get a "did you mean" error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, *aliases: str):
        """Decorator (or call on a value): `item` under `name` and each alias."""

        def decorator(item: T) -> T:
            for key in (name, *aliases):
                if key in self._items:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
                self._items[key] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise LoramemError(
                f"unknown {self.kind} {name!r}.{hint} Valid: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)


def discover(package: str, path: Iterable[str], skip: Iterable[str] = ()) -> None:
    """Import every module of a registry package (its `__name__`, `__path__`) so that their
    registrations run: a new entry is one new file. `skip`: modules that must not load with it."""
    skipped = set(skip)
    for module in pkgutil.iter_modules(path):
        if module.name not in skipped:
            importlib.import_module(f"{package}.{module.name}")
