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
79-83). Without the kernel built, the base product is weight-major and the LoRA part is added
rows-major (`loramem.kernels.decode_linear`).
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
    state: dict = {"idx": None, "masks": {}}
    layouts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (adapter, rank)... -> column owner, scale

    def stack(factors: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple]:
        present = [(j, f) for j, f in enumerate(factors) if f is not None]
        a = torch.cat([f[0] for _, f in present])  # (R, in)
        b = torch.cat([f[1] for _, f in present], 1)  # (out, R), for the kernel
        bt = b.t().contiguous()  # (R, out)
        layout = tuple((j, f[0].shape[0]) for j, f in present)
        if layout not in layouts:
            owner = torch.cat([torch.full((r,), j) for j, r in layout]).to(a.device)
            scale = torch.cat([torch.full((f[0].shape[0],), f[2]) for _, f in present]).to(a)
            layouts[layout] = (owner, scale)
        return a, b, bt, layout

    def mask(layout: tuple, dtype: torch.dtype, rows: int, seq: int | None = None) -> torch.Tensor:
        """(rows, R): each row's own adapter's columns at their scale; with `seq`, (rows * seq, R), one
        row per token (the kernel's form)."""
        key = (layout, seq)
        found = state["masks"].get(key)
        if found is None:
            idx = state["idx"]
            if idx is None:
                raise RuntimeError("call set_rows(idx) with each row's adapter before the forward")
            owner, scale = layouts[layout]
            found = ((owner[None] == idx.to(owner.device)[:, None]) * scale).to(dtype)
            if seq is not None:
                found = found.repeat_interleave(seq, 0)
            state["masks"][key] = found
        if found.shape[0] // (seq or 1) != rows:
            raise ValueError(f"{state['idx'].numel()} row indices for a batch of {rows} rows")
        return found

    def make_forward(module: torch.nn.Linear, a: torch.Tensor, b: torch.Tensor, bt: torch.Tensor, layout: tuple):
        def forward(x: torch.Tensor) -> torch.Tensor:  # x (batch, seq, in)
            if kernel_fits(module.weight, x):  # a decode step (fp32, so are the factors): x W^T + (h * m) B^T
                x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (tokens, in)
                h = few_rows(x2, a).mul_(mask(layout, a.dtype, x.shape[0], x.shape[1]))  # (tokens, R)
                y = linear(module, x)  # on the kernel too, contiguous
                few_rows(h, b, out=y.view(-1, y.shape[-1]), accumulate=True)
                return y
            output = linear(module, x)
            m = mask(layout, a.dtype, x.shape[0])
            # fp32 factors on a half-precision model compute in fp32
            h = (x.to(a.dtype) @ a.t()).mul_(m[:, None, :])  # (batch, seq, R): each row's own adapter's columns
            if torch.is_grad_enabled() or not output.is_contiguous() or output.dtype != a.dtype:
                return output + (h @ bt).to(output.dtype)
            output.view(-1, output.shape[-1]).addmm_(h.view(-1, h.shape[-1]), bt)
            return output

        return forward

    def set_rows(idx: torch.Tensor | Sequence[int]) -> None:
        idx = torch.as_tensor(idx)
        if idx.dim() != 1 or idx.dtype.is_floating_point:
            raise ValueError(f"the stacked form takes one integer index per row, got shape {tuple(idx.shape)} {idx.dtype}")
        if idx.numel() and (int(idx.min()) < -1 or int(idx.max()) >= len(adapters)):
            raise ValueError(f"row index {idx.tolist()} out of range: use -1 (no adapter) to {len(adapters) - 1}")
        state["idx"], state["masks"] = idx.long(), {}

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
