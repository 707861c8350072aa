"""One registry helper for everything a user picks by string (CLI, YAML, HTTP)."""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

from loramem.errors import LoramemError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps unique names to classes; unknown names get a "did you mean" error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str):
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
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
