"""In-context memory: the memories' source documents go before the question; no adapter."""

from loramem.modes.base import MODES, AnswerMode, Plan


@MODES.register("icl")
class InContextMode(AnswerMode):
    name = "icl"

    def plan(self, memories):
        return Plan(context="\n\n".join(m.document for m in memories), adapters=[])
