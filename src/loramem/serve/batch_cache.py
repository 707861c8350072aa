"""The running batch's KV cache: rows join left-padded and leave with the columns only they used.

Rows of a continuous batch started at different times, so their caches have different lengths.
Every row's cache is kept right-aligned: a joining prefill's cache and the batch's are left-padded
with zeros to the longer of the two and stacked, and the attention mask (1 for a row's tokens, 0
for its padding) hides the zeros, so each row attends to its own tokens only, as it would alone
(with its own position ids, which the engine keeps). When rows finish, their rows are dropped and
so are the leading columns that no remaining row uses. This works on transformers' DynamicCache
with plain full-attention layers (`unbatchable_reason` says when a model has others).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# generation settings that change a greedy token; a model that sets one answers alone, as generate does
_PROCESSORS = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens", "sequence_bias",
               "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id", "encoder_repetition_penalty")


def unbatchable_reason(model: torch.nn.Module) -> str | None:
    """Why the batch engine cannot decode for `model` exactly as `generate` does; None when it can."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    cache = DynamicCache(config=model.config)
    if any(type(layer) is not DynamicLayer for layer in getattr(cache, "layers", [])):
        return "sliding-window or other non-plain attention caches"
    gen = getattr(model, "generation_config", None)
    for name in _PROCESSORS:
        value = getattr(gen, name, None)
        if value not in (None, 1.0, 0, [], ()):
            return f"its generation config sets {name}"
    if (getattr(gen, "min_new_tokens", None) or 0) > 0 or (getattr(gen, "min_length", None) or 0) > 0:
        return "its generation config sets a minimum length"
    return None


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """`t` with zeros before its entries along `dim` up to `width` (dim -2 of a KV tensor, or 1 of a mask)."""
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    return F.pad(t, [0, 0] * (t.dim() - 1 - dim % t.dim()) + [missing, 0])


class BatchCache:
    """`cache` (a DynamicCache, or None when no row runs) and `mask` (rows, cache length), in batch order."""

    def __init__(self) -> None:
        self.cache = None
        self.mask: torch.Tensor | None = None

    def clear(self) -> None:
        self.cache, self.mask = None, None

    def next_mask(self) -> torch.Tensor:
        """The mask of the next decode step: every row adds one token."""
        return torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)

    def join(self, cache, mask: torch.Tensor, keep: list[int]) -> None:
        """Add rows `keep` of a fresh prefill's `cache` (its `mask`) after the batch's rows."""
        if len(keep) < mask.shape[0]:
            index = torch.tensor(keep, device=mask.device)
            mask = mask.index_select(0, index)
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)
        if self.cache is None:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = torch.cat([_left_pad(old.keys, width, -2), _left_pad(new.keys, width, -2)])
            old.values = torch.cat([_left_pad(old.values, width, -2), _left_pad(new.values, width, -2)])
        self.mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(mask, width, 1)])

    def retire(self, keep: list[int]) -> None:
        """Keep rows `keep`; drop the leading columns that only the others used."""
        if not keep:
            self.clear()
            return
        index = torch.tensor(keep, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        start = int(mask.any(0).int().argmax())  # padding is on the left: the first column a row uses
        self.mask = mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
