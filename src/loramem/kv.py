"""Staged inference over a compressed document cache (the KV-compression paper's setting).

1. **Prefill** the prompt up to the end of the document, with the base model or with the
   memory's adapter, under a kvpress press that evicts a fraction RHO of those KV pairs.
   kvpress compresses only a prefill that starts from an empty cache, so the document (with the
   chat template's head before it) is prefilled alone, in one pass.
2. **Append** the question and instructions on top of the compressed cache — never evicted —
   with positions continuing from the uncompressed length, as kvpress's own pipeline does.
3. **Decode** greedily, with the adapter on or off.

RHO = 1 means no document at all: the question is asked with no context. Presses run on the
unwrapped transformers model; the attributes a press adds to it are removed afterwards, and
the adapters' hooks are removed after each stage, so the model is left as it was.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from loramem.kernels.decode_linear import decode_linears
from loramem.modes.kv import PRESSES, KVSettings


@dataclass
class KVStats:
    document_tokens: int  # the document's prompt prefix before compression
    kept_tokens: int  # KV pairs of it left in the cache
    cache_bytes: int  # of the compressed prefix, all layers, keys and values


def make_press(settings: KVSettings):
    import kvpress

    cls = getattr(kvpress, PRESSES[settings.press])
    return cls(compression_ratio=settings.compression, **({"seed": settings.seed} if settings.press == "random" else {}))


class _LayerRope(torch.nn.Module):
    """The model's rotary embedding for one layer's rope type: kvpress calls `rotary_emb(x,
    position_ids)`, which models with a rope per layer type (Gemma 3: sliding and full attention)
    answer only with the layer's `layer_type`."""

    def __init__(self, rope: torch.nn.Module, layer_type: str) -> None:
        super().__init__()
        self.rope, self.layer_type = rope, layer_type

    def forward(self, x, position_ids):
        return self.rope(x, position_ids, layer_type=self.layer_type)


def _rope_per_layer(model) -> None:
    """Give each layer the rope of its type where the model has one per layer type (see _LayerRope)."""
    rope, types = getattr(model.model, "rotary_emb", None), getattr(model.config, "layer_types", None)
    if rope is None or not types or "layer_type" not in inspect.signature(rope.forward).parameters:
        return
    for layer, kind in zip(model.model.layers, types):
        if getattr(layer.self_attn, "rotary_emb", None) is rope:
            layer.self_attn.rotary_emb = _LayerRope(rope, kind)


@contextmanager
def pressed(press, model):
    """`press(model)`, then remove what the press attached to the attention layers."""
    layers = model.model.layers
    had = [hasattr(layer.self_attn, "rotary_emb") for layer in layers]
    try:
        with press(model):
            _rope_per_layer(model)
            yield
    finally:
        for layer, present in zip(layers, had):
            if not present and hasattr(layer.self_attn, "rotary_emb"):
                del layer.self_attn.rotary_emb


def split_prompt(fmt, question: str, document: str) -> tuple[list[int], list[int]]:
    """The prompt's token ids cut where the document ends: (up to and with the document, the rest).

    The cut is made in the ids of the whole prompt (by character offsets), so the two parts
    together are exactly the prompt the icl mode reads.
    """
    lead, text = fmt.prompt_parts(question, document)
    end = text.index(document) + len(document)
    try:
        enc = fmt.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
    except NotImplementedError:  # slow tokenizers have no offsets: cut the text instead
        encode = lambda t: fmt.tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
        return lead + encode(text[:end]), encode(text[end:])
    cut = sum(1 for start, _ in offsets if start < end)
    return lead + ids[:cut], ids[cut:]


def cache_bytes(cache) -> int:
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers if layer.keys is not None)


@dataclass
class Prefilled:
    """A document's compressed cache, ready for any question (the prefix does not depend on it)."""

    cache: object
    context_length: int  # uncompressed: positions of what follows continue from here
    stats: KVStats
    document: str  # as prefilled (cut to the model's window)


def _context(fmt, base, document: str, max_new_tokens: int) -> str:
    from loramem.answering import model_window, truncate_context

    return truncate_context(fmt, document, max(0, model_window(base.model) - max_new_tokens - 256))


@torch.no_grad()
def prefill(base, document: str, adapters: list[tuple[str, Path]], settings: KVSettings, max_new_tokens: int = 64,
            cache=None, merge=None) -> Prefilled:
    """Stage 1: the prompt up to the end of `document`, compressed by the press (adapters on or not)."""
    from transformers import DynamicCache

    from loramem.answering import active_adapters
    from loramem.prompts import PromptFormat

    settings.check()
    fmt = PromptFormat(base.tokenizer)
    document = _context(fmt, base, document, max_new_tokens)
    kv = DynamicCache()
    context_ids = split_prompt(fmt, "?", document)[0] if document.strip() else []
    if settings.compression >= 1.0 or not context_ids:  # nothing of the document remains
        return Prefilled(kv, 0, KVStats(document_tokens=len(context_ids), kept_tokens=0, cache_bytes=0), document)
    press = make_press(settings) if settings.compression > 0 else None
    with (active_adapters(base.model, adapters, cache, merge) if settings.adapter_phase == "prefill+decode"
          else nullcontext()), (pressed(press, base.model) if press is not None else nullcontext()):
        base.model.model(input_ids=torch.tensor([context_ids], device=base.device), past_key_values=kv, use_cache=True)
    stats = KVStats(document_tokens=len(context_ids), kept_tokens=kv.get_seq_length(), cache_bytes=cache_bytes(kv))
    return Prefilled(kv, len(context_ids), stats, document)


@torch.no_grad()
def decode(base, prefilled: Prefilled, question: str, adapters: list[tuple[str, Path]],
           settings: KVSettings, max_new_tokens: int = 64, cache=None, merge=None) -> tuple[str, int, int]:
    """Stages 2-3: append the question and instructions, then decode greedily (adapters on or not)."""
    return decode_many(base, prefilled, [question], adapters, settings, max_new_tokens, cache, merge)[0]


@torch.no_grad()
def decode_many(base, prefilled: Prefilled, questions: list[str], adapters: list[tuple[str, Path]],
                settings: KVSettings, max_new_tokens: int = 64, cache=None, merge=None) -> list[tuple[str, int, int]]:
    """`decode` for several questions on one cache, in one batch: (text, prompt tokens, new tokens) each.

    The cache is copied, one row per question (the prefilled one is left as it was). Questions of
    different lengths are padded between the cache and the question, and the padding is masked,
    so each row reads what `decode` alone would; each step reads the weights once for all rows.
    """
    import copy

    from loramem.answering import active_adapters
    from loramem.prompts import PromptFormat

    if not questions:
        return []
    fmt = PromptFormat(base.tokenizer)
    rests = [split_prompt(fmt, q, prefilled.document)[1] if prefilled.context_length else fmt.prompt_ids(q)
             for q in questions]
    model, device, stops = base.model, base.device, set(fmt.stop_ids)
    rows, width, kept = len(rests), max(map(len, rests)), prefilled.stats.kept_tokens
    pad = base.tokenizer.pad_token_id if base.tokenizer.pad_token_id is not None else 0
    kv = copy.deepcopy(prefilled.cache)
    kv.batch_repeat_interleave(rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rests], device=device)
    mask = torch.tensor([[1] * kept + [0] * (width - len(r)) + [1] * len(r) for r in rests], device=device)
    start = prefilled.context_length
    positions = torch.tensor([[start] * (width - len(r)) + list(range(start, start + len(r))) for r in rests],
                             device=device)
    new: list[list[int]] = [[] for _ in rests]
    live = [True] * rows
    with (active_adapters(model, adapters, cache, merge) if settings.adapter_phase != "none" else nullcontext(),
          decode_linears(model)):
        for _ in range(max_new_tokens):
            logits = model(input_ids=ids, attention_mask=mask, past_key_values=kv, position_ids=positions,
                           use_cache=True, logits_to_keep=1).logits
            tokens = logits[:, -1].argmax(-1).tolist()
            for row, token in enumerate(tokens):
                if live[row]:
                    if token in stops:
                        live[row] = False
                    else:
                        new[row].append(token)
            if not any(live):
                break
            ids = torch.tensor([[t] for t in tokens], device=device)
            mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
            positions = positions[:, -1:] + 1
    return [(base.tokenizer.decode(n, skip_special_tokens=True).strip(), start + len(r), len(n))
            for n, r in zip(new, rests)]


def kv_answer(base, question: str, document: str, adapters: list[tuple[str, Path]], settings: KVSettings,
              max_new_tokens: int = 64, cache=None, merge=None) -> tuple[str, int, int, KVStats]:
    """Answer `question` over `document`'s compressed cache; returns text, prompt tokens, new tokens, stats."""
    state = prefill(base, document, adapters, settings, max_new_tokens, cache, merge)
    text, n_prompt, n_new = decode(base, state, question, adapters, settings, max_new_tokens, cache, merge)
    return text, n_prompt, n_new, state.stats
