"""The base model alone: no context, no adapter. The reference every memory is compared with."""

from loramem.modes.base import MODES, AnswerMode, Plan


@MODES.register("base")
class BaseOnlyMode(AnswerMode):
    name = "base"
    needs_memory = False
    batched = True

    def plan(self, memories, question):
        return Plan(context=None, adapters=[])
