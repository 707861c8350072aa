"""A serving batch's adapters in one product per layer: every adapter's factors stacked, each row masked to its own.

For a target linear layer with adapters j = 1..N of ranks r_j, stack A = [A_1; ...; A_N]
(R = sum r_j rows) and B = [B_1, ..., B_N] (R columns). A token of row i (adapter idx_i, -1 for
none) gets

    y = x W^T + ((x A^T) * m_i) B^T,    m_i[c] = s_j if column c belongs to adapter j = idx_i, else 0

the same sum as `loramem.adapters.batched` (one run of two small products per adapter), in three
ops per layer whatever N is. Decoding runs one token per row, where the LoRA part is bound by
per-op overhead, not FLOPs: SmolLM2-135M (210 adapted layers), 8 rows of 1 token, 8 rank-8
adapters, 1 thread of the 2-core Xeon: a decode step took 119 ms without adapters, 161 ms with
the segment loop and 134 ms stacked (132-136 over repeats); 1 row: 54, 66 and 62 ms. The price is
R columns per row instead of r_j, so the engine uses this form while R stays small
(`STACKED_MAX_RANK`) and the segment loop beyond. Forward only: the serving engine's form, no
autograd recorded.

A decode step's few rows take base and LoRA products in one replaced forward, by the compiled
kernel (`loramem.kernels`): x W^T + ((x A^T) * m) B^T, each factor read once. On the 2-core AMD
EPYC, 2 threads, 8 rows with 8 rank-8 adapters, SmolLM2-135M (median steps, three repeats): 73-80
ms without adapters and weight-major products, 103-112 ms with the LoRA part added by a forward
hook, 91-100 ms weight-major in the replaced forward, 71-74 ms on the kernel (1 row: 50 ms, against
79-83). Without the kernel built, the base product is weight-major (`loramem.kernels.decode_linear`).

Prefills (and decode steps off the kernel: no compiler, another dtype, a GPU) take each row's own
adapter's factors only, gathered per row (zero-padded to the largest rank), in two batched
products, as S-LoRA and Punica run prefills: the masked form computes all R columns for every
token, so its cost grew with the adapters in the batch, not with those the rows use. Prefills of
27-token prompts, 8 rank-8 adapters, 2 threads of the EPYC (median of 5, three repeats, ms), base
model alone / masked / gathered: 1 row 103 / 130-140 / 123-132, 4 rows 207-219 / 253-269 /
236-248, 8 rows 347-350 / 426-429 / 392-412.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from loramem.adapters.batched import RowSetter, _checked_factors
from loramem.adapters.files import LoraWeights, UnsupportedAdapter
from loramem.kernels.decode_linear import kernel_fits, linear
from loramem.kernels.few_rows import few_rows

STACKED_MAX_RANK = 256  # sum of the batch's ranks up to which one stacked product beats the segment loop


def stacked_rank(adapters: Sequence[LoraWeights]) -> int:
    """The largest sum of ranks over one layer: the columns each row computes in the stacked form."""
    totals: dict[str, int] = {}
    for weights in adapters:
        for path, (a, _b) in weights.layers.items():
            totals[path] = totals.get(path, 0) + a.shape[0]
    return max(totals.values(), default=0)


@contextmanager
def stacked_lora(model: torch.nn.Module, adapters: Sequence[LoraWeights]) -> Iterator[RowSetter]:
    """Inside the block each row of a batch runs with its own adapter; yields `set_rows(idx)`, idx (batch,).

    The same contract as `batched_lora` for whole rows (a position in `adapters`, -1 for none;
    it holds until set again), with the factors copied into one stack per layer on entry. Each
    target linear layer's forward is replaced (not hooked) while inside: a decode step's few rows
    then take base and LoRA products on the compiled kernel in one go (`loramem.kernels`), at
    about half the cost of a hook adding the LoRA part to `nn.Linear`'s output (above).
    """
    modules = dict(model.named_modules())
    per_module = _checked_factors(modules, adapters)
    state: dict = {"idx": None, "cached": {}}  # the rows' indices; masks and picks made from them
    layouts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (adapter, rank, scale)... -> column owner, scale

    def stack(factors: list) -> tuple:
        """The layer's factors: A (R, in) and B (out, R) stacked for the kernel, and per adapter
        (n, r, in) and (n, r, out), zero-padded to the largest rank r (views when ranks are equal)."""
        present = [(j, f) for j, f in enumerate(factors) if f is not None]
        a = torch.cat([f[0] for _, f in present])  # (R, in)
        b = torch.cat([f[1] for _, f in present], 1)  # (out, R)
        ranks = [f[0].shape[0] for _, f in present]
        r = max(ranks)
        if min(ranks) == r:
            a3, b3 = a.view(len(present), r, -1), b.t().contiguous().view(len(present), r, -1)
        else:
            a3, b3 = a.new_zeros(len(present), r, a.shape[1]), b.new_zeros(len(present), r, b.shape[0])
            for k, (_, f) in enumerate(present):
                a3[k, :f[0].shape[0]], b3[k, :f[0].shape[0]] = f[0], f[1].t()
        layout = tuple((j, f[0].shape[0], f[2]) for j, f in present)
        if layout not in layouts:
            owner = torch.cat([torch.full((rank,), j) for j, rank, _ in layout]).to(a.device)
            scale = torch.cat([torch.full((rank,), s) for _, rank, s in layout]).to(a)
            layouts[layout] = (owner, scale)
        return a, b, a3, b3, layout

    def idx_for(rows: int) -> torch.Tensor:
        idx = state["idx"]
        if idx is None:
            raise RuntimeError("call set_rows(idx) with each row's adapter before the forward")
        if idx.numel() != rows:
            raise ValueError(f"{idx.numel()} row indices for a batch of {rows} rows")
        return idx

    def mask(layout: tuple, dtype: torch.dtype, rows: int, seq: int) -> torch.Tensor:
        """(rows * seq, R): each token's own adapter's columns at their scale (the kernel's form)."""
        idx = idx_for(rows)
        key = ("mask", layout, seq)
        found = state["cached"].get(key)
        if found is None:
            owner, scale = layouts[layout]
            found = ((owner[None] == idx.to(owner.device)[:, None]) * scale).to(dtype).repeat_interleave(seq, 0)
            state["cached"][key] = found
        return found

    def picks(layout: tuple, dtype: torch.dtype, device: torch.device, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows,) each row's adapter's block in the layer's per-adapter factors and (rows,) its scale
        (0 for a row without an adapter here)."""
        idx = idx_for(rows)
        key = ("picks", layout)
        found = state["cached"].get(key)
        if found is None:
            blocks = {j: (k, s) for k, (j, _rank, s) in enumerate(layout)}
            chosen = [blocks.get(int(i), (0, 0.0)) for i in idx]
            found = (torch.tensor([k for k, _ in chosen], device=device),
                     torch.tensor([s for _, s in chosen], dtype=dtype, device=device))
            state["cached"][key] = found
        return found

    def make_forward(module: torch.nn.Linear, a: torch.Tensor, b: torch.Tensor, a3: torch.Tensor, b3: torch.Tensor,
                     layout: tuple):
        def forward(x: torch.Tensor) -> torch.Tensor:  # x (batch, seq, in)
            if kernel_fits(module.weight, x):  # a decode step (fp32, so are the factors): x W^T + (h * m) B^T
                x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (tokens, in)
                h = few_rows(x2, a).mul_(mask(layout, a.dtype, x.shape[0], x.shape[1]))  # (tokens, R)
                y = linear(module, x)  # on the kernel too, contiguous
                few_rows(h, b, out=y.view(-1, y.shape[-1]), accumulate=True)
                return y
            # Prefills (and steps off the kernel): each row times its own adapter's factors only, gathered,
            # not all R columns masked (S-LoRA's and Punica's gathered product for prefills)
            output = linear(module, x)
            batch = x.shape[0]
            pick, scale = picks(layout, a3.dtype, a3.device, batch)
            xs = x.to(a3.dtype).reshape(batch, -1, x.shape[-1])  # fp32 factors on a half-precision model: fp32
            h = torch.bmm(xs, a3.index_select(0, pick).transpose(1, 2)).mul_(scale[:, None, None])  # (batch, seq, r)
            b_rows = b3.index_select(0, pick)  # (batch, r, out)
            if torch.is_grad_enabled() or not output.is_contiguous() or output.dtype != a3.dtype:
                return output + torch.bmm(h, b_rows).view(output.shape).to(output.dtype)
            output.view(batch, -1, output.shape[-1]).baddbmm_(h, b_rows)
            return output

        return forward

    def set_rows(idx: torch.Tensor | Sequence[int]) -> None:
        idx = torch.as_tensor(idx)
        if idx.dim() != 1 or idx.dtype.is_floating_point:
            raise ValueError(f"the stacked form takes one integer index per row, got shape {tuple(idx.shape)} {idx.dtype}")
        if idx.numel() and (int(idx.min()) < -1 or int(idx.max()) >= len(adapters)):
            raise ValueError(f"row index {idx.tolist()} out of range: use -1 (no adapter) to {len(adapters) - 1}")
        state["idx"], state["cached"] = idx.long(), {}

    changed = []
    try:
        for path, factors in per_module.items():
            module = modules[path]
            if "forward" in vars(module):
                raise UnsupportedAdapter(f"{path}'s forward is already replaced; the stacked form cannot apply")
            module.forward = make_forward(module, *stack(factors))
            changed.append(module)
        yield set_rows
    finally:
        for module in changed:
            vars(module).pop("forward", None)
