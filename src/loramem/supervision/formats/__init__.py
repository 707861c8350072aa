"""Formats turn document chunks into examples; picked with `--format` (see base.parse_format)."""

from loramem.registry import discover
from loramem.supervision.formats.base import ALIASES, FORMATS, Format, FormatSpec, Made, Part, parse_format, supported
from loramem.supervision.formats.qa import parse_pairs

discover(__name__, __path__)

__all__ = ["ALIASES", "FORMATS", "Format", "FormatSpec", "Made", "Part", "parse_format", "parse_pairs", "supported"]
