"""What `--generator` names, made into a generator: `auto` (default: the embedded strong generator
when it is installed, else the base model), `embedded` (Qwen2.5-Coder-1.5B-Instruct, shipped as
wheels, run by llama.cpp), `local` (the base model itself), a `.gguf` file (any GGUF chat model, by
llama.cpp), or an `http://`/`https://` URL of an OpenAI-compatible chat endpoint (vLLM, llama.cpp
server, Ollama, a hosted API).

Kept apart from `base.py`, which the generators import: resolving a spec imports them.
"""

from __future__ import annotations

from collections.abc import Callable

from loramem.supervision.generators.base import GENERATORS, Generator


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def is_gguf(spec: str) -> bool:
    return spec.lower().endswith(".gguf")


def check_generator(spec: str) -> None:
    """Raise the registry's error for an unknown generator name, before any work starts."""
    if not (is_url(spec) or is_gguf(spec)):
        GENERATORS.get(spec)


def make_generator(spec: str, base: Callable[[], object], options: dict | None = None) -> Generator:
    """The generator named by `spec`: a registered name, a .gguf file or an OpenAI-compatible URL."""
    options = options or {}
    if is_url(spec):
        from loramem.supervision.generators.http import HTTPGenerator

        return HTTPGenerator(spec, **options)
    if is_gguf(spec):
        from loramem.supervision.generators.llamacpp import GGUFGenerator

        return GGUFGenerator(spec)
    return GENERATORS.get(spec)(base, options)
