"""Reading memories back: activate adapters on the base model for one answer, then restore it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from loramem.adapters import AdapterCache, UnsupportedAdapter, check_adapter_files, hooked
from loramem.errors import LoramemError
from loramem.kernels.decode_linear import decode_linears
from loramem.merges import MERGES, Merge, MergeMethod, check_merge
from loramem.models import BaseModel
from loramem.prompts import PromptFormat

__all__ = ["Merge", "active_adapters", "check_merge", "generate_answer", "model_window", "truncate_context"]


def model_window(model: torch.nn.Module) -> int:
    """The positions `model` was trained on (its config's max_position_embeddings; 2048 if it has none):
    a prompt and its answer must fit in them."""
    return int(getattr(model.config, "max_position_embeddings", None) or 2048)


@contextmanager
def active_adapters(
    model: torch.nn.Module, adapters: list[tuple[str, Path]], cache: AdapterCache | None = None,
    merge: Merge | None = None,
) -> Iterator[torch.nn.Module]:
    """`model` with the given (memory name, adapter folder) pairs active, combined by `merge`
    (default: the exact sum); restored on exit.

    Plain LoRA adapters go through cached weights, the merge method's fast path and hooks;
    methods without one, and other adapters, through PEFT's `add_weighted_adapter`. An adapter
    file that cannot be read raises AdapterFileError naming the memory, before the model is touched.
    """
    merge = merge or Merge()
    method = MERGES.get(merge.method)
    if not adapters:
        yield model
        return
    weights = list(merge.weights) if merge.weights is not None else [1.0] * len(adapters)
    if len(weights) != len(adapters):
        raise LoramemError(f"{len(weights)} merge weights for {len(adapters)} memories")
    if len(adapters) == 1:
        method = MERGES.get("sum")  # one memory: its weighted adapter as it is
    loaded = None
    if method.combine is not None:
        param = next(model.parameters())
        cache = cache or AdapterCache(capacity=len(adapters))
        try:
            loaded = method.combine([(cache.get(Path(path), param.device, param.dtype, name), w)
                                     for (name, path), w in zip(adapters, weights)], merge)
        except UnsupportedAdapter:
            loaded = None
    if loaded is not None:
        with hooked(model, loaded):
            yield model
        return
    for name, path in adapters:
        check_adapter_files(Path(path), name)
    with _peft_merged(model, adapters, weights, method, merge) as peft_model:
        yield peft_model


@contextmanager
def _peft_merged(model, adapters, weights, method: MergeMethod, merge: Merge):
    from peft import PeftModel

    (first, first_path), rest = adapters[0], adapters[1:]
    peft_model = PeftModel.from_pretrained(model, str(first_path), adapter_name=first)
    try:
        for name, path in rest:
            peft_model.load_adapter(str(path), adapter_name=name)
        names = [name for name, _ in adapters]
        if method.peft is None:  # the exact sum: PEFT's own multi-adapter forward
            peft_model.base_model.set_adapter(names)
        else:
            ranks = {n: peft_model.peft_config[n].r for n in names}
            if method.one_rank and len(set(ranks.values())) > 1:
                listed = ", ".join(f"{n} (rank {r})" for n, r in ranks.items())
                raise LoramemError(f"merge {merge.method!r} needs memories of one rank; got {listed}; use sum or svd")
            torch.manual_seed(merge.seed)  # DARE's random drops are reproducible
            # PEFT reads density only where its method prunes (ties, dare_*, magnitude_prune)
            peft_model.add_weighted_adapter(names, weights, "loramem-merged", combination_type=method.peft,
                                            density=merge.density)
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
    if context:  # what the question and the answer leave of the window (the question's share at least 256)
        asked = len(fmt.prompt_ids(question)) + 32  # and the words around the context
        context = truncate_context(fmt, context, max(0, model_window(base.model) - max_new_tokens - max(256, asked)))
    ids = torch.tensor([fmt.prompt_ids(question, context)], device=base.device)
    with active_adapters(base.model, list(adapters), cache, merge) as model, decode_linears(base.model):
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
