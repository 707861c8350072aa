"""Reading memories back: activate adapters on the base model for one answer, then restore it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from loramem.activation import AdapterCache, UnsupportedAdapter, hooked
from loramem.models import BaseModel
from loramem.prompts import PromptFormat


@contextmanager
def active_adapters(
    model: torch.nn.Module, adapters: list[tuple[str, Path]], cache: AdapterCache | None = None
) -> Iterator[torch.nn.Module]:
    """`model` with the given adapters active (their outputs summed); restored on exit.

    Several active LoRA adapters add their deltas: W x + sum_i B_i A_i x, the exact sum.
    Plain LoRA adapters go through cached weights and hooks (fast); others through PEFT.
    """
    if not adapters:
        yield model
        return
    param = next(model.parameters())
    try:
        cache = cache or AdapterCache(capacity=len(adapters))
        weights = [(cache.get(Path(path), param.device, param.dtype), 1.0) for _, path in adapters]
    except UnsupportedAdapter:
        weights = None
    if weights is not None:
        with hooked(model, weights):
            yield model
        return
    from peft import PeftModel

    (first, first_path), rest = adapters[0], adapters[1:]
    peft_model = PeftModel.from_pretrained(model, str(first_path), adapter_name=first)
    try:
        for name, path in rest:
            peft_model.load_adapter(str(path), adapter_name=name)
        if rest:
            peft_model.base_model.set_adapter([name for name, _ in adapters])
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
) -> tuple[str, int]:
    """Greedy answer and the number of prompt tokens it read."""
    fmt = PromptFormat(base.tokenizer)
    if context:
        window = getattr(base.model.config, "max_position_embeddings", 2048)
        context = truncate_context(fmt, context, max(0, window - max_new_tokens - 256))
    ids = torch.tensor([fmt.prompt_ids(question, context)], device=base.device)
    with active_adapters(base.model, list(adapters), cache) as model:
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=fmt.stop_ids,
            pad_token_id=fmt.end_id,
        )
    text = base.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return text.strip(), ids.shape[1]
