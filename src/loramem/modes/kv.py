"""`kv`: the memories' documents read through a compressed KV cache, the adapter on in the phases
chosen (see loramem.kv for the stages). Options: KVSettings (press, compression, adapter_phase),
declared here, apart from the stages, so that naming them (the CLI's flags) loads no torch."""

from __future__ import annotations

from dataclasses import dataclass

from loramem.errors import LoramemError
from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.modes.icl import documents
from loramem.options import option

PRESSES = {  # name → kvpress class name (those that exist in the installed kvpress are offered)
    "expected_attention": "ExpectedAttentionPress",
    "snapkv": "SnapKVPress",
    "knorm": "KnormPress",
    "streaming_llm": "StreamingLLMPress",
    "random": "RandomPress",
    "compactor": "CompactorPress",
    "tova": "TOVAPress",
    "observed_attention": "ObservedAttentionPress",
}
PHASES = ("prefill+decode", "decode", "none")


@dataclass(frozen=True)
class KVSettings:
    """The kv mode's options; `seed` (the random press's) is internal, offered to no user."""

    press: str = option("expected_attention", "kvpress press", choices=tuple(PRESSES))
    compression: float = option(0.5, "fraction of the document's KV pairs evicted, RHO, 0-1 (1 = no document)")
    adapter_phase: str = option("prefill+decode", "when the memory's adapter is on", choices=PHASES)
    seed: int = 0

    def check(self) -> KVSettings:
        if not 0.0 <= self.compression <= 1.0:
            raise LoramemError(f"compression must be between 0 and 1 (the fraction evicted), got {self.compression}")
        if self.adapter_phase not in PHASES:
            raise LoramemError(f"unknown adapter phase {self.adapter_phase!r}; valid: {', '.join(PHASES)}")
        available = available_presses()
        if self.press not in available:
            raise LoramemError(f"unknown press {self.press!r}; valid: {', '.join(available)}")
        return self


def available_presses() -> list[str]:
    try:
        import kvpress
    except ImportError:
        raise LoramemError("the kv mode needs kvpress: pip install kvpress") from None
    return [name for name, cls in PRESSES.items() if hasattr(kvpress, cls)]


@MODES.register("kv")
class CompressedCacheMode(AnswerMode):
    name = "kv"
    settings_type = KVSettings

    def plan(self, memories, question):
        return Plan(context=documents(memories), adapters=list(memories), kv=self.settings.check())
