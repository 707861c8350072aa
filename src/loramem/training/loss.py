"""The fast loss: run the decoder, then the output head only at supervised positions.

With a 49K-token vocabulary the head is ~20% of the model's FLOPs and its logits dominate
activation memory; answers are a few tokens of a longer prompt, so computing logits only where
a target is predicted saves most of that work. The result equals the plain causal-LM loss
with prompt labels set to -100 (see tests/training/test_loss.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from loramem.training.batching import Batch


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, mean over supervised tokens
    correct: torch.Tensor  # (batch,) bool: greedy decoding reproduces the whole target
    n_targets: int


def supervised_forward(model: torch.nn.Module, batch: Batch) -> StepOutput:
    """`model` is a Hugging Face causal LM (adapters may be injected into its layers)."""
    device = next(model.parameters()).device
    ids = batch.input_ids.to(device)
    hidden = model.base_model(
        input_ids=ids, attention_mask=batch.attention_mask.to(device), use_cache=False
    ).last_hidden_state  # (batch, seq, hidden)
    # Position t predicts token t+1: select positions whose *next* token is a target.
    select = batch.target_mask[:, 1:].to(device)  # (batch, seq-1)
    logits = model.get_output_embeddings()(hidden[:, :-1][select])  # (n_targets, vocab)
    labels = ids[:, 1:][select]  # (n_targets,)
    loss = F.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        wrong = logits.argmax(-1) != labels
        rows = select.nonzero()[:, 0]
        n_wrong = torch.zeros(ids.shape[0], dtype=torch.long, device=device).index_add_(
            0, rows, wrong.long()
        )
    return StepOutput(loss=loss, correct=(n_wrong == 0).cpu(), n_targets=int(labels.numel()))
