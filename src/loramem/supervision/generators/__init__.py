"""Generators write supervision text: `auto`, `embedded`, `local`, a .gguf file or an OpenAI-compatible URL."""

from loramem.supervision.generators import llamacpp, local  # noqa: F401  (registration)
from loramem.supervision.generators.base import GENERATORS, Generator
from loramem.supervision.generators.http import GeneratorError, HTTPGenerator
from loramem.supervision.generators.spec import check_generator, is_url, make_generator

__all__ = ["GENERATORS", "Generator", "GeneratorError", "HTTPGenerator", "check_generator", "is_url",
           "make_generator"]
