"""Reading memories back: activate adapters on the base model for one answer, then restore it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from loramem.activation import AdapterCache, UnsupportedAdapter, hooked, svd_merge, ties_merge
from loramem.errors import LoramemError
from loramem.models import BaseModel
from loramem.prompts import PromptFormat

MERGES = ("sum", "cat", "linear", "ties", "dare_linear", "dare_ties", "svd")


@dataclass(frozen=True)
class Merge:
    """How several active memories combine. `sum` adds their deltas exactly: W x + sum_i B_i A_i x
    (the same as PEFT's `cat`). PEFT's `linear`, `ties`, `dare_*` combine the A factors and the B
    factors separately, so they are *not* a sum of deltas; `svd` re-factorizes the summed delta."""

    method: str = "sum"
    weights: tuple[float, ...] | None = None  # one per memory; default 1 each
    density: float = 0.5  # ties / dare: share of entries kept
    seed: int = 0  # dare drops entries at random


def check_merge(method: str) -> str:
    if method not in MERGES:
        raise LoramemError(f"unknown merge method {method!r}; valid: {', '.join(MERGES)}")
    return method


@contextmanager
def active_adapters(
    model: torch.nn.Module, adapters: list[tuple[str, Path]], cache: AdapterCache | None = None,
    merge: Merge | None = None,
) -> Iterator[torch.nn.Module]:
    """`model` with the given adapters active, combined by `merge` (default: the exact sum); restored on exit.

    Plain LoRA adapters summed, TIES- or SVD-merged go through cached weights and hooks (fast);
    everything else through PEFT's `add_weighted_adapter`.
    """
    merge = merge or Merge()
    check_merge(merge.method)
    if not adapters:
        yield model
        return
    weights = list(merge.weights) if merge.weights is not None else [1.0] * len(adapters)
    if len(weights) != len(adapters):
        raise LoramemError(f"{len(weights)} merge weights for {len(adapters)} memories")
    method = "sum" if len(adapters) == 1 or merge.method == "cat" else merge.method
    loaded = None
    if method in ("sum", "ties", "svd"):
        param = next(model.parameters())
        try:
            cache = cache or AdapterCache(capacity=len(adapters))
            loaded = [(cache.get(Path(path), param.device, param.dtype), w) for (_, path), w in zip(adapters, weights)]
            if method == "ties":
                loaded = [(ties_merge(loaded, merge.density), 1.0)]
            elif method == "svd":
                loaded = [(svd_merge(loaded), 1.0)]
        except UnsupportedAdapter:
            loaded = None
    if loaded is not None:
        with hooked(model, loaded):
            yield model
        return
    with _peft_merged(model, adapters, weights, method, merge) as peft_model:
        yield peft_model


@contextmanager
def _peft_merged(model, adapters, weights, method, merge):
    from peft import PeftModel

    (first, first_path), rest = adapters[0], adapters[1:]
    peft_model = PeftModel.from_pretrained(model, str(first_path), adapter_name=first)
    try:
        for name, path in rest:
            peft_model.load_adapter(str(path), adapter_name=name)
        names = [name for name, _ in adapters]
        if method == "sum":
            peft_model.base_model.set_adapter(names)
        else:
            ranks = {n: peft_model.peft_config[n].r for n in names}
            if method not in ("svd",) and len(set(ranks.values())) > 1:
                listed = ", ".join(f"{n} (rank {r})" for n, r in ranks.items())
                raise LoramemError(f"merge {method!r} needs memories of one rank; got {listed}; use sum or svd")
            torch.manual_seed(merge.seed)  # DARE's random drops are reproducible
            extra = {"density": merge.density} if method.startswith(("ties", "dare")) else {}
            peft_model.add_weighted_adapter(names, weights, "loramem-merged", combination_type=method, **extra)
            peft_model.set_adapter("loramem-merged")
        yield peft_model
    finally:
        peft_model.unload()


def truncate_context(fmt: PromptFormat, context: str, budget: int) -> str:
    """Keep the start of `context` within `budget` tokens."""
    ids = fmt.tokenizer(context, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return context
    return fmt.tokenizer.decode(ids[:budget])


@torch.no_grad()
def generate_answer(
    base: BaseModel,
    question: str,
    context: str | None = None,
    adapters: list[tuple[str, Path]] = (),
    max_new_tokens: int = 64,
    cache: AdapterCache | None = None,
    merge: Merge | None = None,
    streamer=None,
) -> tuple[str, int, int]:
    """Greedy answer, the number of prompt tokens it read and the number of tokens it wrote.

    `streamer` (a transformers streamer) receives the answer's tokens as they are made.
    """
    fmt = PromptFormat(base.tokenizer)
    if context:
        window = getattr(base.model.config, "max_position_embeddings", 2048)
        context = truncate_context(fmt, context, max(0, window - max_new_tokens - 256))
    ids = torch.tensor([fmt.prompt_ids(question, context)], device=base.device)
    with active_adapters(base.model, list(adapters), cache, merge) as model:
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=fmt.stop_ids,
            pad_token_id=fmt.end_id,
            streamer=streamer,
        )
    new = out[0, ids.shape[1]:]
    text = base.tokenizer.decode(new, skip_special_tokens=True)
    return text.strip(), ids.shape[1], len(new)
