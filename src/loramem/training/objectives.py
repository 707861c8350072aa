"""Training objectives: what the loss is, per example.

* `answer`: next-token loss on the answer tokens only, under the chat prompt (QA supervision).
* `next-token`: plain language modelling on the text, every token supervised, no template
  (the paper's raw "Original" format).
* `distill`: deep context distillation (Knowledge Modules, arXiv 2503.08727): the student (base
  + adapter, no document) matches the teacher (base, no adapter, the example's chunk in
  context) on the answer tokens: KL to the teacher's next-token distribution, optionally plus a
  normalized L1 distance between the two models' hidden states at every layer.

`auto` is `next-token` for raw examples and `answer` for everything else. Examples without a
chunk (records) cannot be distilled and use `answer`.
"""

from __future__ import annotations

from loramem.errors import LoramemError
from loramem.supervision.examples import Example

OBJECTIVES = ("auto", "answer", "next-token", "distill")


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise LoramemError(f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}")
    return name


def example_objective(objective: str, example: Example) -> str:
    """The objective one example is trained with under the write's `objective`."""
    if example.kind == "raw" and objective in ("auto", "distill"):
        return "next-token"
    if objective == "auto" or (objective == "distill" and not example.chunk):
        return "answer"
    return objective
