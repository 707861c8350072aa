"""Supervision: what a memory is trained on, derived from the user's files."""

from loramem.supervision.examples import Example
from loramem.supervision.sources import Source, read_sources

__all__ = ["Example", "Source", "read_sources"]
