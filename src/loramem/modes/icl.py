"""In-context memory: the memories' source documents go before the question (cut at the model's
window); `parametric+icl` adds the memories' adapters as well (the first paper's hybrid)."""

from loramem.modes.base import MODES, AnswerMode, Plan


def documents(memories) -> str:
    return "\n\n".join(m.document for m in memories)


@MODES.register("icl")
class InContextMode(AnswerMode):
    name = "icl"

    def plan(self, memories, question):
        return Plan(context=documents(memories), adapters=[])


@MODES.register("parametric+icl")
class ParametricInContextMode(AnswerMode):
    name = "parametric+icl"

    def plan(self, memories, question):
        return Plan(context=documents(memories), adapters=list(memories))
