"""Generators write supervision text: `auto`, `embedded`, `local`, a .gguf file or an OpenAI-compatible URL."""

from loramem.registry import discover
from loramem.supervision.generators.base import GENERATORS, Generator
from loramem.supervision.generators.http import GeneratorError, HTTPGenerator
from loramem.supervision.generators.spec import check_generator, is_url, make_generator

discover(__name__, __path__)

__all__ = ["GENERATORS", "Generator", "GeneratorError", "HTTPGenerator", "check_generator", "is_url",
           "make_generator"]
