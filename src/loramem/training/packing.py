"""A batch of short examples as one packed sequence: no padding, the shared head once.

A batch of rows that all begin with the chat template's head (`Batch.prefix` tokens) becomes

    [head | row 0 after the head | row 1 after the head | ...]

with each row's positions continuing from the head's, and a block mask under which a token sees
the head and the earlier tokens of its own row, nothing else. Every token then goes through the
model's linear layers in one GEMM per layer (M = all the batch's tokens) instead of a separate
small pass for the head, whose GEMMs (M ~ 17) ran at a fifth of the large ones' rate on a
2-core CPU, plus padded rows. The outputs are those of the padded batch (tests compare losses
and gradients).

The mask is dense, so attention costs (packed tokens)^2 instead of the sum of the rows' squares:
`packing_pays` keeps long batches (document chunks) on the padded path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from loramem.training.batching import Batch


@dataclass
class Packed:
    ids: torch.Tensor  # (1, T)
    positions: torch.Tensor  # (1, T)
    mask: torch.Tensor  # (1, 1, T, T) additive: 0 where a token may attend, the dtype's minimum elsewhere
    predicts: torch.Tensor  # (n_targets,) packed positions whose next token is a target, row by row
    rows: torch.Tensor  # (n_targets,) the batch row of each


def pack(batch: Batch, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Packed:
    """`batch` (right-padded rows sharing `batch.prefix` head tokens) as one sequence."""
    p = batch.prefix
    # Per packed token: its id, position, row (-1 for the shared head), and whether it is a target.
    ids, positions = [batch.input_ids[0, :p]], [torch.arange(p)]
    segment, target = [torch.full((p,), -1)], [torch.zeros(p, dtype=torch.bool)]
    for row, n in enumerate(batch.attention_mask.sum(1).tolist()):
        ids.append(batch.input_ids[row, p:n])
        positions.append(torch.arange(p, n))
        segment.append(torch.full((n - p,), row))
        target.append(batch.target_mask[row, p:n])
    ids, positions, segment, target = (torch.cat(t) for t in (ids, positions, segment, target))
    # A target is never a row's first token after the head (the head stops short of every prompt's
    # end), so the token before each target lies in the same row.
    predicts = target[1:].nonzero()[:, 0]
    if not torch.equal(segment[predicts], segment[predicts + 1]):
        raise ValueError("a target token begins its row: the shared prefix covers a whole prompt")
    n = ids.numel()
    causal = torch.ones(n, n, dtype=torch.bool).tril_()
    visible = causal & ((segment[:, None] == segment[None, :]) | (segment[None, :] == -1))
    mask = torch.zeros(n, n, dtype=dtype).masked_fill_(~visible, torch.finfo(dtype).min)
    return Packed(
        ids=ids[None].to(device), positions=positions[None].to(device), mask=mask[None, None].to(device),
        predicts=predicts.to(device), rows=segment[predicts].to(device),
    )


def packing_pays(batch: Batch, config) -> bool:
    """Whether to run `batch` packed: more than one row, and a packed sequence short enough that
    its dense attention adds at most a quarter to the linear layers' FLOPs.

    Per token the linear layers cost ~2(4h^2 + 3hf) FLOPs (h hidden, f MLP width), per attended
    (query, key) pair ~4h. The padded path computes the same linear FLOPs when rows are of equal
    length, but in two passes, one with M = head tokens; packed, the GEMMs run once at M = T.
    For the default model the bound is ~860 tokens: a batch of 8 QA pairs packs, 8 document
    chunks of 512 tokens do not.
    """
    h = config.hidden_size
    f = getattr(config, "intermediate_size", None) or 4 * h
    per_token, per_pair = 2 * (4 * h * h + 3 * h * f), 4 * h
    rows = batch.input_ids.shape[0]
    n_packed = int(batch.attention_mask.sum()) - (rows - 1) * batch.prefix
    return rows > 1 and n_packed * per_pair <= per_token / 4
