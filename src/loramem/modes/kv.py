"""`kv`: the memories' documents read through a compressed KV cache, the adapter on in the phases
chosen (see loramem.kv for the stages). Options: press, compression, adapter_phase."""

from loramem.kv import KVSettings
from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.modes.icl import documents


@MODES.register("kv")
class CompressedCacheMode(AnswerMode):
    name = "kv"
    options = ("press", "compression", "adapter_phase")

    def plan(self, memories, question):
        settings = KVSettings(**self.settings).check()
        return Plan(context=documents(memories), adapters=list(memories), kv=settings)
