"""Verified write: does greedy decoding reproduce each training target?

No generation loop is needed: greedy decoding reproduces a target exactly iff the argmax at
every target position of one teacher-forced forward pass equals the target token.
"""

from __future__ import annotations

import torch

from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR
from loramem.training.batching import Batch
from loramem.training.loss import supervised_forward


@torch.no_grad()
def read_back(model: torch.nn.Module, batches: list[Batch], n_examples: int) -> torch.Tensor:
    """(n_examples,) bool: which examples the model reproduces exactly."""
    was_training = model.training
    model.eval()
    correct = torch.zeros(n_examples, dtype=torch.bool)
    try:
        for batch in batches:
            correct[batch.index] = supervised_forward(model, batch).correct
    finally:
        model.train(was_training)
    return correct


def counted(examples: list[Example]) -> torch.Tensor:
    """(n,) bool: the examples a write's recall and stopping test count: its knowledge, not its
    anchors (a regulariser distilled to the base model, whose argmax may tie); all if only anchors."""
    mask = torch.tensor([e.kind != ANCHOR for e in examples], dtype=torch.bool)
    return mask if mask.any() else torch.ones(len(examples), dtype=torch.bool)
