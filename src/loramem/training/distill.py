"""Deep context distillation: the teacher's view of each target token, computed once before training.

The teacher (the base model, no adapter, the chunk in context) runs once per example. For each
answer token it keeps the top-k next-token log-probabilities (k=64 holds nearly all the mass,
where the full 49K-entry distribution would not fit in memory for a corpus), and optionally
its hidden states at every layer. The student loss is the cross-entropy between the two models'
distributions renormalized over the teacher's top-k tokens: the KL divergence on that support,
plus the teacher's (constant) entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from loramem.training.batching import Encoded, make_batches


@dataclass
class TeacherTargets:
    """Per distilled example, one row per target token."""

    top_ids: torch.Tensor  # (n_target, k) long
    top_probs: torch.Tensor  # (n_target, k) float, renormalized to sum to 1
    hidden: torch.Tensor | None  # (n_target, layers, hidden) bf16, when hidden-state distance is on


@torch.no_grad()
def teacher_targets(
    model: torch.nn.Module, encoded: list[Encoded], pad_id: int, top_k: int = 64,
    hidden: bool = False, batch_size: int = 4, progress: bool = True,
) -> dict[int, TeacherTargets]:
    """Teacher targets for every example that has teacher ids, keyed by its index in `encoded`."""
    chosen = [i for i, e in enumerate(encoded) if e.teacher_ids is not None]
    if not chosen:
        return {}
    as_teacher = [Encoded(encoded[i].teacher_ids, encoded[i].teacher_n_prompt) for i in chosen]
    device = next(model.parameters()).device
    out: dict[int, TeacherTargets] = {}
    was_training = model.training
    model.eval()
    try:
        batches = make_batches(as_teacher, batch_size, pad_id)
        for batch in tqdm(batches, desc="teacher", unit="batch", disable=not progress, leave=False):
            result = model.base_model(
                input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                use_cache=False, output_hidden_states=hidden,
            )
            select = batch.target_mask[:, 1:].to(device)
            logp = F.log_softmax(model.get_output_embeddings()(result.last_hidden_state[:, :-1][select]).float(), -1)
            values, ids = logp.topk(top_k, dim=-1)
            probs = values.softmax(-1)
            states = torch.stack(result.hidden_states[1:], dim=2)[:, :-1][select].to(torch.bfloat16) if hidden else None
            counts = select.sum(1).tolist()
            start = 0
            for row, n in enumerate(counts):
                i = chosen[int(batch.index[row])]
                end = start + n
                out[i] = TeacherTargets(ids[start:end].cpu(), probs[start:end].cpu(),
                                        states[start:end].cpu() if states is not None else None)
                start = end
    finally:
        model.train(was_training)  # restored on error too: the caller's model is left as it was
    return out


@dataclass
class BatchTeacher:
    """Teacher rows aligned with a batch's selected target positions (row-major, as `select` orders them)."""

    mask: torch.Tensor  # (n_selected,) bool: distilled positions
    top_ids: torch.Tensor  # (n_selected, k)
    top_probs: torch.Tensor  # (n_selected, k)
    hidden: torch.Tensor | None  # (n_selected, layers, hidden)


def batch_teacher(targets: dict[int, TeacherTargets], index: torch.Tensor, counts: list[int]) -> BatchTeacher | None:
    """Stack the teacher rows of the examples in a batch; None when none of them is distilled."""
    rows = [targets.get(int(i)) for i in index]
    present = [t for t in rows if t is not None]
    if not present:
        return None
    k = present[0].top_ids.shape[1]
    with_hidden = present[0].hidden is not None
    mask, ids, probs, hidden = [], [], [], []
    for t, n in zip(rows, counts):
        mask.append(torch.full((n,), t is not None))
        ids.append(t.top_ids if t is not None else torch.zeros(n, k, dtype=torch.long))
        probs.append(t.top_probs if t is not None else torch.zeros(n, k))
        if with_hidden:
            shape = present[0].hidden.shape[1:]
            hidden.append(t.hidden if t is not None else torch.zeros(n, *shape, dtype=torch.bfloat16))
    return BatchTeacher(torch.cat(mask), torch.cat(ids), torch.cat(probs), torch.cat(hidden) if with_hidden else None)
