"""Parametric memory: the memories' adapters are active; nothing is added to the context."""

from loramem.modes.base import MODES, AnswerMode, Plan


@MODES.register("parametric")
class ParametricMode(AnswerMode):
    name = "parametric"
    batched = True

    def plan(self, memories, question):
        return Plan(context=None, adapters=list(memories))
