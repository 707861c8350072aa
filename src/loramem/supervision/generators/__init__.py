"""Generators turn a document into question–answer examples. Picked by name with `--generator`."""

from loramem.supervision.generators.base import GENERATORS, QAGenerator, split_sentences
from loramem.supervision.generators import cloze, local  # noqa: F401  (registration)

__all__ = ["GENERATORS", "QAGenerator", "split_sentences"]
