"""Several memories' batches as one forward: each memory's rows carry its own adapter.

Each memory's batch becomes the sequences its one-memory step would run (see loss.py): one packed
sequence where `packing_pays` (its rows after one shared template head, a block mask keeping them
apart), else one sequence per row. The sequences of all memories are stacked as rows of one
right-padded batch with a (rows, 1, L, L) mask, so the base model's GEMMs run over every
memory's tokens at once while attention stays within a sequence (packing all memories into one
sequence would make the dense attention grow with the square of their number). Padding beyond a
sequence's end sees only itself and is seen by nothing. The output head runs once, over every
memory's target positions; each memory's loss is then `target_loss` over its own positions, the
mean its one-memory step computes (tests/training/test_train_memories.py compares losses and gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loramem.training.batching import Batch
from loramem.training.distill import TeacherTargets, batch_teacher
from loramem.training.loss import StepOutput, target_loss
from loramem.training.packing import pack, packing_pays


@dataclass
class Piece:
    """One memory's part of a batched step: its batch, its adapter's slot, its teacher targets."""

    batch: Batch
    slot: int  # the memory's position in the adapters given to batched_lora
    teacher: dict[int, TeacherTargets] | None = None
    hidden_weight: float = 0.0


@dataclass
class _Sequence:
    ids: torch.Tensor  # (n,)
    positions: torch.Tensor  # (n,)
    visible: torch.Tensor  # (n, n) bool: which earlier tokens each token attends to
    predicts: torch.Tensor  # (k,) positions whose next token is a target
    rows: torch.Tensor  # (k,) the batch row of each


def _sequences(batch: Batch, config) -> list[_Sequence]:
    """The sequences the one-memory step runs for `batch`, on the host."""
    if packing_pays(batch, config):
        seq = pack(batch)
        return [_Sequence(seq.ids[0], seq.positions[0], seq.mask[0, 0] == 0, seq.predicts, seq.rows)]
    out = []
    for row, n in enumerate(batch.attention_mask.sum(1).tolist()):
        predicts = batch.target_mask[row, 1:n].nonzero()[:, 0]  # position t predicts the target at t + 1
        out.append(_Sequence(batch.input_ids[row, :n], torch.arange(n), torch.ones(n, n, dtype=torch.bool).tril_(),
                             predicts, torch.full_like(predicts, row)))
    return out


# One batched forward keeps the attention of every row it stacks, (rows, heads, width, width) a layer,
# for the backward. Eight document memories' packed batches (~800 tokens each) in one forward took
# all 24 GiB of a machine and were killed; one such memory alone, 0.64M of rows x width^2, trains in
# a few GiB. So a step runs its memories in groups of at most this many rows x width^2.
ATTENTION_BUDGET = 1 << 20


def _shape(piece: Piece, config) -> tuple[int, int]:
    """(sequences, longest) that `piece`'s batch becomes in a forward, without building them."""
    batch = piece.batch
    lengths = batch.attention_mask.sum(1)
    if packing_pays(batch, config):
        return 1, int(lengths.sum()) - (len(lengths) - 1) * batch.prefix
    return len(lengths), int(lengths.max())


def forward_groups(pieces: list[Piece], config, budget: int | None = None) -> list[list[Piece]]:
    """`pieces` in consecutive groups whose stacked forward holds at most `budget` (ATTENTION_BUDGET)
    rows x width^2 (a piece larger than that alone); each group is one `multi_forward`."""
    budget = ATTENTION_BUDGET if budget is None else budget
    groups: list[list[Piece]] = []
    rows = width = 0
    for piece in pieces:
        n, longest = _shape(piece, config)
        if groups and (rows + n) * max(width, longest) ** 2 <= budget:
            groups[-1].append(piece)
            rows, width = rows + n, max(width, longest)
        else:
            groups.append([piece])
            rows, width = n, longest
    return groups


def multi_forward(model: torch.nn.Module, pieces: list[Piece], set_rows, pad_id: int) -> list[StepOutput]:
    """One forward (under `batched_lora(model, ...)`, whose `set_rows` is given) of every piece's
    batch; each piece's StepOutput as its one-memory `supervised_forward` would return it.

    The loss of each is its own mean: sum them for the batched step (adapters share no parameters,
    so each gets the gradient of its own loss).
    """
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    seqs, owners, first_seq = [], [], []
    for piece in pieces:
        first_seq.append(len(seqs))
        made = _sequences(piece.batch, model.config)
        seqs.extend(made)
        owners.extend([piece.slot] * len(made))
    first_seq.append(len(seqs))
    n_rows, width = len(seqs), max(s.ids.numel() for s in seqs)
    ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    positions = torch.zeros((n_rows, width), dtype=torch.long)
    visible = torch.eye(width, dtype=torch.bool).repeat(n_rows, 1, 1)  # padding sees itself only
    flat = []  # per sequence, the flat positions (row * width + t) that predict a target
    for r, s in enumerate(seqs):
        n = s.ids.numel()
        ids[r, :n], positions[r, :n], visible[r, :n, :n] = s.ids, s.positions, s.visible
        flat.append(s.predicts + r * width)
    mask = torch.zeros((n_rows, 1, width, width), dtype=dtype).masked_fill_(~visible[:, None], torch.finfo(dtype).min)
    flat_all = torch.cat(flat)
    want_hidden = any(p.teacher and p.hidden_weight > 0 and next(iter(p.teacher.values())).hidden is not None
                      for p in pieces)
    set_rows(torch.tensor(owners))
    ids = ids.to(device)
    result = model.base_model(input_ids=ids, attention_mask=mask.to(device), position_ids=positions.to(device),
                              use_cache=False, output_hidden_states=want_hidden)
    flat_dev = flat_all.to(device)
    hidden = result.last_hidden_state.flatten(0, 1)[flat_dev]  # (all targets, hidden)
    logits_all = model.get_output_embeddings()(hidden)  # the head only where a target is predicted
    labels_all = ids.flatten()[flat_dev + 1]
    states = torch.stack(result.hidden_states[1:], dim=2).flatten(0, 1)[flat_dev] if want_hidden else None
    counts = [sum(s.predicts.numel() for s in seqs[first_seq[k]:first_seq[k + 1]]) for k in range(len(pieces))]
    # Split, not sliced: split's backward joins the memories' gradients once, where each slice's
    # backward would fill a zero tensor of every memory's logits (targets x vocab).
    logits_each, labels_each = torch.split(logits_all, counts), torch.split(labels_all, counts)
    states_each = torch.split(states, counts) if states is not None else [None] * len(pieces)
    outputs = []
    for k, piece in enumerate(pieces):
        logits, labels = logits_each[k], labels_each[k]
        rows = torch.cat([s.rows for s in seqs[first_seq[k]:first_seq[k + 1]]]).to(device)
        n_batch = piece.batch.input_ids.shape[0]
        per_row = torch.bincount(rows, minlength=n_batch).tolist()  # targets in row order, as `select` orders them
        bt = batch_teacher(piece.teacher, piece.batch.index, per_row) if piece.teacher else None
        loss = target_loss(logits, labels, bt, piece.hidden_weight, states_each[k])
        with torch.no_grad():
            wrong = (logits.argmax(-1) != labels).long()
            n_wrong = torch.zeros(n_batch, dtype=torch.long, device=device).index_add_(0, rows, wrong)
        outputs.append(StepOutput(loss=loss, correct=(n_wrong == 0).cpu(), n_targets=counts[k]))
    return outputs
