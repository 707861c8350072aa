"""`kv`: the memories' documents read through a compressed KV cache, the adapter on in the phases
chosen (see loramem.kv for the stages). Options: KVSettings (press, compression, adapter_phase)."""

from loramem.kv import KVSettings
from loramem.modes.base import MODES, AnswerMode, Plan
from loramem.modes.icl import documents


@MODES.register("kv")
class CompressedCacheMode(AnswerMode):
    name = "kv"
    settings_type = KVSettings

    def plan(self, memories, question):
        return Plan(context=documents(memories), adapters=list(memories), kv=self.settings.check())
