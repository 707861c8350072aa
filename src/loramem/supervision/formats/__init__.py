"""Formats turn document chunks into examples; picked with `--format` (see base.parse_format)."""

from loramem.supervision.formats import cloze, generated_text, qa, raw  # noqa: F401  (registration)
from loramem.supervision.formats.base import ALIASES, FORMATS, Format, FormatSpec, Made, Part, parse_format, supported
from loramem.supervision.formats.qa import parse_pairs

__all__ = ["ALIASES", "FORMATS", "Format", "FormatSpec", "Made", "Part", "parse_format", "parse_pairs", "supported"]
