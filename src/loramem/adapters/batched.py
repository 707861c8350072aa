"""Many adapters in one batch: each row (or token) gets its own LoRA, as S-LoRA and Punica serve them.

For a target linear layer W (out, in) and adapters j with A_j (r_j, in), B_j (out, r_j) and scale
s_j (alpha_j / r_j, as PEFT), a token x whose row carries adapter idx (-1: none) gets

    y = x W^T + s_idx (x A_idx^T) B_idx^T

The base GEMM runs once over every adapter's tokens (the module's own forward); a forward hook
adds the LoRA products segment-wise: the batch's tokens split into runs that share one adapter
(rows grouped by adapter are one run each; otherwise the tokens are permuted once so that they
are) and each run does two small matmuls on a view of x. Under autograd the runs' products are
concatenated and added, so plain autograd gives every adapter's A and B exact gradients; with
nothing to record they are added in place (`addmm_`).

Why this form. One adapted linear, forward + backward, M = 200 tokens a row, one row per adapter,
r = 8, min of 10 runs on 1 thread of a shared 2-core machine (ms, three repeats):

    576 -> 1536, N = 16   base GEMMs 75-92   segment loop 102-123   in-place autograd.Function 93-111
                          gather A[idx], B[idx] + bmm 99-133        stacked (N, r, in) bmm 97-102
    576 -> 576,  N = 16   base 29-34   segment loop 41-52   Function 39-43   gather 39-49   stacked 38-48

No form was ahead in every repeat (run-to-run spread ~10%): at r = 8 the LoRA part is bound by
passes over x and dy, not by FLOPs, whatever the kernel. So this keeps the plain-autograd loop:
no hand-written backward, and per-adapter tensors rather than (N, r, in) stacks, so that mixed
ranks, per-memory optimizers and schedules, and a memory leaving the batch need no re-stacking
(stacking costs a copy of every factor each step). Forward only (serving), 16 rows of 1 token:
in-place loop 0.59 ms, gather + bmm 0.67, one GEMM over all adapters masked 0.65 (base 0.40);
16 rows of 200 tokens: 39.9, 40.8, 49.9 (base 35.9).

Whole model (SmolLM2-135M, 2 threads, `python -m loramem.adapters.batched`): a training step of
N adapters batched runs 1.16-1.17x the tokens/s of one at a time at N = 4-8, 0.93x at N = 16,
where ~3 GB of fresh activations a step page-fault (1.1x with glibc's heap trimming off); at
M = 200 one adapter's GEMMs already run near the matmul peak, so batching saves only overhead.

Training k adapters batched gives each the gradients it gets alone when the loss is the sum of
each adapter's own mean loss (not one mean over the batch): adapters share no parameters, so
d(sum_i L_i)/d theta_j = d L_j / d theta_j (tests/adapters/test_batched.py). AdamW is elementwise,
so one optimizer with a param group per adapter (its own lr schedule) steps each as if alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from loramem.adapters.files import LoraWeights, UnsupportedAdapter

Factors = tuple[torch.Tensor, torch.Tensor, float]  # A (r, in), B (out, r), scale
RowSetter = Callable[[torch.Tensor | Sequence[int]], None]  # set_rows(idx): idx (batch,) or (batch, seq)


@dataclass(frozen=True)
class Segments:
    """A batch's tokens as runs that share one adapter: sizes[k] tokens of adapter owners[k] (-1: none).

    `order`, when set, is the token permutation that makes each adapter's tokens one run; the
    runs then count tokens in that order.
    """

    sizes: list[int]
    owners: list[int]
    order: torch.Tensor | None = None


def token_segments(idx: torch.Tensor) -> Segments:
    """The runs of `idx` (tokens,), each token's adapter (-1: none); one sync with the host."""
    tokens = idx.numel()
    if tokens == 0:
        return Segments([], [])
    change = torch.ones(tokens, dtype=torch.bool, device=idx.device)
    change[1:] = idx[1:] != idx[:-1]
    starts = change.nonzero().flatten()
    owners = idx[starts].tolist()
    bounds = starts.tolist() + [tokens]
    adapters = [o for o in owners if o >= 0]
    if len(adapters) == len(set(adapters)):  # each adapter's tokens already contiguous
        return Segments([b - a for a, b in zip(bounds, bounds[1:])], owners)
    order = torch.argsort(idx, stable=True)
    grouped = token_segments(idx[order])
    return Segments(grouped.sizes, grouped.owners, order)


def add_batched_lora(x: torch.Tensor, y: torch.Tensor, segments: Segments,
                     factors: Sequence[Factors | None]) -> torch.Tensor:
    """y + s_j (x A_j^T) B_j^T for each run of adapter j; x (tokens, in), y (..., out) the base output
    (its leading dims `tokens` in all).

    factors[j] is adapter j's (A (r_j, in), B (out, r_j), s_j), or None where it lacks this layer.
    Returns y's shape: y itself, changed in place, when autograd has nothing to record or the
    runs are in order (then one autograd node records it). Pass the layer's output itself, not a
    view of it: an in-place change of a view costs autograd two copies of it in the backward.
    """
    order = segments.order
    given, shape, y = y, y.shape, y.view(-1, y.shape[-1])  # y (tokens, out) from here
    xs = x if order is None else x.index_select(0, order)  # (tokens, in), each adapter one run
    recording = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad or any(
        f is not None and (f[0].requires_grad or f[1].requires_grad) for f in factors))
    if not recording:
        start = 0
        for n, j in zip(segments.sizes, segments.owners):
            if j >= 0 and (f := factors[j]) is not None:
                a, b, s = f
                h = xs[start:start + n].to(a.dtype) @ a.t()  # (run, r)
                if order is None and a.dtype == y.dtype:
                    y[start:start + n].addmm_(h, b.t(), alpha=s)
                elif order is None:
                    y[start:start + n].add_((h @ b.t()).mul_(s).to(y.dtype))
                else:
                    y.index_add_(0, order[start:start + n], (h @ b.t()).to(y.dtype), alpha=s)
            start += n
        return y.view(shape)
    if order is None:  # rows grouped by adapter (training): one autograd node, y changed in place
        runs, tensors, start = [], [], 0
        for n, j in zip(segments.sizes, segments.owners):
            if j >= 0 and (f := factors[j]) is not None:
                runs.append((start, n, f[2]))
                tensors += [f[0], f[1]]
            start += n
        return _SegmentLora.apply(given, x, runs, *tensors)
    # Runs permuted (interleaved rows): torch.split's backward concatenates once, where slicing x per
    # run would allocate a full dx per run.
    parts = []
    for piece, j in zip(torch.split(xs, segments.sizes), segments.owners):
        f = factors[j] if j >= 0 else None
        if f is None:
            parts.append(piece.new_zeros(piece.shape[0], y.shape[1]))
        else:
            a, b, s = f
            # (run, in) -> (run, r) -> (run, out), in the adapter's dtype (fp32 factors on a bf16 model, as PEFT)
            parts.append(((piece.to(a.dtype) @ a.t()).mul_(s) @ b.t()).to(y.dtype))
    delta = parts[0] if len(parts) == 1 else torch.cat(parts)  # (tokens, out)
    return y.index_add(0, order, delta).view(shape)


class _SegmentLora(torch.autograd.Function):
    """y[run] += s (x[run] A^T) B^T for each run of one adapter, in place on y, the base output (its
    own backward needs only x and W); the backward written out:

        h = x A^T    dh = s dy B    dA = dh^T x    dB = s dy^T h    dx = dh A

    In place of a product per run concatenated and added (a cat and an add over (tokens, out)
    forward, a cat and a zero fill over (tokens, in) backward): ~8% of a SmolLM2 training step
    of 4 memories on 1 CPU thread. `runs` holds (start, tokens, scale), `ab` each run's A and B."""

    @staticmethod
    def forward(ctx, y, x, runs, *ab):
        flat, hs = y.view(-1, y.shape[-1]), []  # y: the layer's output, (..., out)
        for (start, n, s), a, b in zip(runs, ab[0::2], ab[1::2]):
            h = x[start:start + n].to(a.dtype) @ a.t()  # (run, r)
            if a.dtype == y.dtype:
                flat[start:start + n].addmm_(h, b.t(), alpha=s)
            else:  # fp32 factors on a half-precision model
                flat[start:start + n].add_((h @ b.t()).mul_(s).to(y.dtype))
            hs.append(h)
        ctx.mark_dirty(y)
        ctx.runs = runs
        ctx.save_for_backward(x, *hs, *ab)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        grad = grad_y.reshape(-1, grad_y.shape[-1])  # (tokens, out)
        x, *rest = ctx.saved_tensors
        runs = ctx.runs
        hs, ab = rest[:len(runs)], rest[len(runs):]
        dx = None
        if ctx.needs_input_grad[1]:
            dx = torch.empty_like(x)
            covered = 0
        grads = []
        for (start, n, s), h, a, b in zip(runs, hs, ab[0::2], ab[1::2]):
            g = grad[start:start + n].to(a.dtype)  # (run, out)
            dh = (g @ b).mul_(s)  # (run, r)
            if dx is not None:
                dx[covered:start].zero_()  # tokens without an adapter
                if a.dtype == dx.dtype:
                    torch.mm(dh, a, out=dx[start:start + n])
                else:
                    dx[start:start + n] = (dh @ a).to(dx.dtype)
                covered = start + n
            grads += [dh.t() @ x[start:start + n].to(a.dtype), (g.t() @ h).mul_(s)]
        if dx is not None:
            dx[covered:].zero_()
        return grad_y, dx, None, *grads


class _Rows:
    """The adapter index of the next forward's rows, shared by every hooked layer; segments cached per shape."""

    def __init__(self, n_adapters: int) -> None:
        self.n_adapters = n_adapters
        self.idx: torch.Tensor | None = None
        self.cache: tuple[tuple, Segments] | None = None

    def set(self, idx: torch.Tensor | Sequence[int]) -> None:
        idx = torch.as_tensor(idx)
        if idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise ValueError(f"the row index must be integers, got {idx.dtype}")
        if idx.numel() and (int(idx.min()) < -1 or int(idx.max()) >= self.n_adapters):
            raise ValueError(f"row index {idx.tolist()} out of range: use -1 (no adapter) to {self.n_adapters - 1}")
        self.idx, self.cache = idx.long(), None

    def segments(self, lead: torch.Size, device: torch.device) -> Segments:
        """Segments for a layer input whose leading dims are `lead`, (batch,) + (seq,) or (batch, seq)."""
        key = (tuple(lead), device)
        if self.cache is not None and self.cache[0] == key:
            return self.cache[1]
        idx = self.idx
        if idx is None:
            raise RuntimeError("call set_rows(idx) with each row's adapter before the forward")
        if tuple(lead[: idx.dim()]) != tuple(idx.shape):
            raise ValueError(f"row index of shape {tuple(idx.shape)} does not fit a batch of shape {tuple(lead)}: "
                             "give one index per row (batch,) or per token (batch, seq)")
        tokens = idx.reshape(*idx.shape, *[1] * (len(lead) - idx.dim())).expand(lead).reshape(-1)
        segments = token_segments(tokens.to(device))
        self.cache = (key, segments)
        return segments


def _checked_factors(modules: dict[str, torch.nn.Module], adapters: Sequence[LoraWeights]) -> dict[str, list]:
    """Per target module path, each adapter's (A, B, scale) or None; UnsupportedAdapter if one does not fit."""
    per_module: dict[str, list[Factors | None]] = {}
    for j, weights in enumerate(adapters):
        for path, (a, b) in weights.layers.items():
            module = modules.get(path)
            if not isinstance(module, torch.nn.Linear):
                raise UnsupportedAdapter(f"adapter {j} targets {path}, which is not a linear layer of this model")
            w = module.weight
            if a.dim() != 2 or b.dim() != 2 or a.shape[1] != w.shape[1] or b.shape != (w.shape[0], a.shape[0]):
                raise UnsupportedAdapter(f"adapter {j} at {path}: A {tuple(a.shape)} and B {tuple(b.shape)} do not fit "
                                         f"a linear layer {w.shape[1]} -> {w.shape[0]}; was it written on another model?")
            wider = a.dtype == torch.float32 and w.dtype in (torch.bfloat16, torch.float16)  # as PEFT keeps them
            if (a.dtype != w.dtype and not wider) or b.dtype != a.dtype or a.device != w.device or b.device != w.device:
                raise UnsupportedAdapter(f"adapter {j} at {path} is {a.dtype} on {a.device}, the layer {w.dtype} on "
                                         f"{w.device}: load it with the model's dtype and device")
            per_module.setdefault(path, [None] * len(adapters))[j] = (a, b, float(weights.scale))
    return per_module


@contextmanager
def batched_lora(model: torch.nn.Module, adapters: Sequence[LoraWeights]) -> Iterator[RowSetter]:
    """Inside the block each row of a batch runs with its own adapter; yields `set_rows(idx)`.

    Call `set_rows(idx)` before a forward: idx (batch,) gives each row's adapter (a position in
    `adapters`, -1 for none), or (batch, seq) each token's (for packed rows); it holds for later
    forwards (generation) until set again. Adapters may differ in rank and in target modules;
    their tensors are used as given (trainable when they require grad), in the model's dtype or,
    on a bf16/fp16 model, in fp32: then x is cast up and the product computed in fp32, as PEFT
    computes the fp32 LoRA factors it keeps on a half-precision model (bf16 training).
    One forward hook per target linear layer; all are removed on exit, so the model is unchanged.
    """
    modules = dict(model.named_modules())
    per_module = _checked_factors(modules, adapters)
    rows = _Rows(len(adapters))

    def make_hook(factors: list[Factors | None]):
        def hook(_module, args, output):
            x = args[0]  # (batch, seq, in)
            segments = rows.segments(x.shape[:-1], x.device)
            return add_batched_lora(x.reshape(-1, x.shape[-1]), output, segments, factors)  # (batch, seq, out)

        return hook

    handles = []
    try:
        for path, factors in per_module.items():
            handles.append(modules[path].register_forward_hook(make_hook(factors)))
        yield rows.set
    finally:
        for h in handles:
            h.remove()


def random_adapters(model: torch.nn.Module, n: int, rank: int = 8, seed: int = 0,
                    trainable: bool = True) -> list[LoraWeights]:
    """`n` adapters with small random A and B on every linear layer inside the decoder layers (as
    `all-linear`), scale 2 (alpha = 2r): for benchmarks and tests, not for writing memories."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        layers = {}
        for path, m in model.named_modules():
            if isinstance(m, torch.nn.Linear) and ".layers." in f".{path}":
                w = m.weight
                a = (torch.randn(rank, w.shape[1], generator=g) * 0.02).to(w).requires_grad_(trainable)
                b = (torch.randn(w.shape[0], rank, generator=g) * 0.02).to(w).requires_grad_(trainable)
                layers[path] = (a, b)
        out.append(LoraWeights(layers, 2.0))
    return out


def _step(model: torch.nn.Module, ids: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    """One training step (optimizer set) or one forward: the head on the last 16 positions only,
    as the trainer computes logits only where targets are."""
    decoder, head = model.base_model, model.get_output_embeddings()
    if optimizer is None:
        with torch.no_grad():
            head(decoder(input_ids=ids, use_cache=False).last_hidden_state[:, -16:])
        return
    logits = head(decoder(input_ids=ids, use_cache=False).last_hidden_state[:, -17:-1])  # (batch, 16, vocab)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, -16:].flatten(), reduction="none")
    loss.view(ids.shape[0], -1).mean(1).sum().backward()  # each row (adapter) its own mean
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def benchmark(model: torch.nn.Module, counts: Sequence[int] = (1, 4, 16), seq: int = 200,
              rank: int = 8, repeats: int = 2) -> list[dict]:
    """Tokens/s of N adapters (one row of `seq` tokens each) in one batch vs one adapter at a time,
    for a training step (forward, backward, AdamW) and a forward alone; the best of `repeats`
    alternating runs (other processes share the cores). Prints a table, returns the rows."""
    device = next(model.parameters()).device
    vocab = model.get_output_embeddings().weight.shape[0]
    rows = []
    for n in counts:
        adapters = random_adapters(model, n, rank)
        ids = torch.randint(0, vocab, (n, seq), generator=torch.Generator().manual_seed(n)).to(device)
        params = [t for w in adapters for ab in w.layers.values() for t in ab]
        with batched_lora(model, adapters) as set_rows:
            for mode in ("train", "forward"):
                optimizer = torch.optim.AdamW(params, lr=1e-4) if mode == "train" else None
                set_rows(torch.arange(n))
                _step(model, ids, optimizer)  # warm-up at full size: the allocator's heap grows once
                best = {"batched": math.inf, "sequential": math.inf}
                for _ in range(repeats):
                    for how in best:
                        tick = time.perf_counter()
                        if how == "batched":
                            set_rows(torch.arange(n))
                            _step(model, ids, optimizer)
                        else:
                            for j in range(n):
                                set_rows([j])
                                _step(model, ids[j:j + 1], optimizer)
                        best[how] = min(best[how], time.perf_counter() - tick)
                rows.append({"adapters": n, "mode": mode, "tokens": n * seq, "threads": torch.get_num_threads(),
                             "tokens_per_s_batched": n * seq / best["batched"],
                             "tokens_per_s_sequential": n * seq / best["sequential"],
                             "speedup": best["sequential"] / best["batched"]})
                r = rows[-1]
                print(f"N={n:>3} {mode:<8} batched {r['tokens_per_s_batched']:9.0f} tok/s   "
                      f"one at a time {r['tokens_per_s_sequential']:9.0f} tok/s   x{r['speedup']:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    import argparse
    import json

    from loramem.models import load_base

    parser = argparse.ArgumentParser(description="tokens/s of N adapters batched vs one at a time")
    parser.add_argument("--model", default=None, help="base model (default: the embedded default)")
    parser.add_argument("--counts", default="1,4,16", help="adapter counts, e.g. 1,4,16")
    parser.add_argument("--seq", type=int, default=200, help="tokens per row")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    result = benchmark(load_base(ns.model).model, [int(c) for c in ns.counts.split(",")], ns.seq)
    if ns.json:
        print(json.dumps(result, indent=1))
