"""Supervision: what a memory is trained on, derived from the user's files."""

from loramem.supervision.build import ChunkSettings, Supervision, build_supervision
from loramem.supervision.cache import SupervisionCache
from loramem.supervision.examples import Example
from loramem.supervision.formats import FORMATS, FormatSpec, parse_format
from loramem.supervision.sources import Source, read_sources

__all__ = ["ChunkSettings", "Example", "FORMATS", "FormatSpec", "Source", "Supervision", "SupervisionCache",
           "build_supervision", "parse_format", "read_sources"]
