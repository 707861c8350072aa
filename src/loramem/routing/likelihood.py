"""How much likelier a memory makes a question than the base model does: the reranker's signal.

A memory written from a document has learned that document's words, names and phrasing, so
a question about the document is likelier under it than under the base model, and likelier
than under a memory of another document. For candidates j the gain is the mean, over the
question's tokens t (in the chat prompt a user sends), of

    log p_j(x_t | x_<t) - log p_base(x_t | x_<t)

All candidates and the base model score in one forward of len(adapters) + 1 identical rows,
each row with its own adapter (`batched_lora`: row 0 has none).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from loramem.adapters.batched import batched_lora
from loramem.adapters.files import LoraWeights
from loramem.prompts import PromptFormat


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def question_tokens(tokenizer, question: str) -> tuple[list[int], int, int]:
    """The chat prompt's ids for `question` and the span [start, end) of the question's own tokens."""
    fmt = PromptFormat(tokenizer)
    lead, text = fmt.prompt_parts(question)
    at = text.find(question)
    if at < 0:  # a template that rewrites the question: score the whole prompt
        ids = lead + _encode(tokenizer, text)
        return ids, len(lead) + 1, len(ids)
    before, after = _encode(tokenizer, text[:at]), _encode(tokenizer, text[at + len(question):])
    asked = _encode(tokenizer, question)
    ids = lead + before + asked + after
    start = len(lead) + len(before)
    return ids, max(start, 1), start + len(asked)  # the first token has nothing to be predicted from


@torch.inference_mode()
def likelihood_gains(model: torch.nn.Module, tokenizer, question: str, adapters: Sequence[LoraWeights]) -> list[float]:
    """Per adapter, the mean log-likelihood gain (nats a token) of `question`'s tokens over the base model."""
    if not adapters:
        return []
    ids, start, end = question_tokens(tokenizer, question)
    device = next(model.parameters()).device
    batch = torch.tensor([ids[:end]] * (len(adapters) + 1), device=device)  # (rows, seq): nothing after is scored
    with batched_lora(model, adapters) as set_rows:
        set_rows(list(range(-1, len(adapters))))
        logits = model(input_ids=batch).logits[:, start - 1 : end - 1].float()  # (rows, question, vocab)
    targets = batch[:, start:end]
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0].mean(-1)  # (rows,)
    return (logp[1:] - logp[0]).tolist()
