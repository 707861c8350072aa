"""The fast loss: run the decoder, then the output head only at supervised positions.

With a 49K-token vocabulary the head is ~20% of the model's FLOPs and its logits dominate
activation memory; answers are a few tokens of a longer prompt, so computing logits only where
a target is predicted saves most of that work. The result equals the plain causal-LM loss
with prompt labels set to -100 (see tests/training/test_loss.py). Distilled positions use the
cross-entropy to the teacher's distribution instead (see distill.py).

Short examples run packed (see packing.py): the batch's rows become one sequence without
padding, their shared template head appears once, and a block mask keeps rows apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from loramem.training.batching import Batch
from loramem.training.distill import BatchTeacher, TeacherTargets, batch_teacher
from loramem.training.packing import pack, packing_pays


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, mean over supervised tokens
    correct: torch.Tensor  # (batch,) bool: greedy decoding reproduces the whole target
    n_targets: int


def supervised_forward(
    model: torch.nn.Module, batch: Batch, teacher: dict[int, TeacherTargets] | None = None,
    hidden_weight: float = 0.0, packed: bool | None = None,
) -> StepOutput:
    """`model` is a Hugging Face causal LM (adapters may be injected into its layers).
    `packed`: run the batch as one packed sequence; by default where `packing_pays`."""
    param = next(model.parameters())
    device = param.device
    p = batch.prefix
    ids = batch.input_ids.to(device)
    # Position t predicts token t+1; no position inside the shared prefix predicts a target.
    select = batch.target_mask[:, p + 1 :].to(device)  # (batch, seq-p-1): positions whose next token is a target
    bt: BatchTeacher | None = batch_teacher(teacher, batch.index, select.sum(1).tolist()) if teacher else None
    want_hidden = bt is not None and bt.hidden is not None and hidden_weight > 0
    if packed if packed is not None else packing_pays(batch, model.config):
        seq = pack(batch, device, param.dtype)
        result = model.base_model(input_ids=seq.ids, attention_mask=seq.mask, position_ids=seq.positions,
                                  use_cache=False, output_hidden_states=want_hidden)
        predicting, labels, rows = seq.predicts, seq.ids[0, seq.predicts + 1], seq.rows
        logits = model.get_output_embeddings()(result.last_hidden_state[0, predicting])  # (n_targets, vocab)
        if want_hidden:
            student_hidden = torch.stack(result.hidden_states[1:], dim=2)[0, predicting]
    else:
        result = _decode(model.base_model, ids, batch.attention_mask.to(device), p, want_hidden)
        hidden = result.last_hidden_state  # (batch, seq-p, hidden)
        # The head runs only where the next token is a target.
        logits = model.get_output_embeddings()(hidden[:, :-1][select])  # (n_targets, vocab)
        labels = ids[:, p + 1 :][select]  # (n_targets,)
        rows = select.nonzero()[:, 0]
        if want_hidden:
            student_hidden = torch.stack(result.hidden_states[1:], dim=2)[:, :-1][select]
    loss = target_loss(logits, labels, bt, hidden_weight, student_hidden if want_hidden else None)
    with torch.no_grad():
        wrong = logits.argmax(-1) != labels
        n_wrong = torch.zeros(ids.shape[0], dtype=torch.long, device=device).index_add_(
            0, rows, wrong.long()
        )
    return StepOutput(loss=loss, correct=(n_wrong == 0).cpu(), n_targets=int(labels.numel()))


def target_loss(logits: torch.Tensor, labels: torch.Tensor, bt: BatchTeacher | None = None, hidden_weight: float = 0.0,
                student_hidden: torch.Tensor | None = None) -> torch.Tensor:
    """The mean loss over one batch's supervised positions: logits (n_targets, vocab), labels (n_targets,).

    Cross-entropy on the labels; with `bt`, the distilled positions take the KL to the teacher's
    top-k instead, plus `hidden_weight` x the hidden-state distance where `student_hidden`
    (n_targets, layers, hidden) is given. Shared by the trainer's batched step
    (multi_batch.py) and PEFT's one-memory forward (`supervised_forward`), so that both compute the same loss.
    """
    if bt is None:
        return F.cross_entropy(logits.float(), labels)
    device = logits.device
    logp = F.log_softmax(logits.float(), -1)
    ce = -logp.gather(1, labels[:, None]).squeeze(1)
    # KL on the teacher's top-k support: both distributions renormalized over those k tokens.
    student_topk = F.log_softmax(logits.float().gather(1, bt.top_ids.to(device)), -1)
    kd = -(bt.top_probs.to(device) * student_topk).sum(-1)
    mask = bt.mask.to(device)
    loss = torch.where(mask, kd, ce).mean()
    if student_hidden is not None and bt.hidden is not None and hidden_weight > 0:
        student = student_hidden[mask].float()
        target = bt.hidden.to(device)[mask].float()
        distance = (student - target).abs().sum(-1) / target.abs().sum(-1).clamp(min=1e-6)
        loss = loss + hidden_weight * distance.mean()
    return loss


def _decode(decoder: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, prefix: int, hidden_states: bool):
    """The decoder's outputs for positions `prefix`.. of every row.

    The shared prefix (the chat template's head, identical in every row) runs once and its keys
    and values are repeated across the batch, so a batch of B rows computes it once, not B times;
    gradients flow through the repeat into the prefix's LoRA weights as they would without it.
    """
    if prefix == 0:
        return decoder(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=hidden_states)
    from transformers import DynamicCache

    cache = DynamicCache()
    decoder(input_ids=ids[:1, :prefix], attention_mask=mask[:1, :prefix], past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(ids.shape[0])
    return decoder(input_ids=ids[:, prefix:], attention_mask=mask, past_key_values=cache, use_cache=True,
                   output_hidden_states=hidden_states)
