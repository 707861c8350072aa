"""Generators write supervision text: `local` (the base model) or an OpenAI-compatible URL."""

from loramem.supervision.generators import local  # noqa: F401  (registration)
from loramem.supervision.generators.base import GENERATORS, Generator, is_url
from loramem.supervision.generators.http import GeneratorError, HTTPGenerator

__all__ = ["GENERATORS", "Generator", "GeneratorError", "HTTPGenerator", "is_url"]
