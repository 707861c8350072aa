"""Examples → token tensors. Batches group examples of similar length, so padding stays small."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from loramem.prompts import PromptFormat
from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR, FORGET
from loramem.training.objectives import example_objective


@dataclass
class Encoded:
    """One example as ids; `n_prompt` ids of prompt, then the supervised target ids.

    A distilled example also has the teacher's ids (the chunk in context, then the same target).
    """

    ids: list[int]
    n_prompt: int
    teacher_ids: list[int] | None = None
    teacher_n_prompt: int = 0


@dataclass
class Batch:
    """Right-padded tensors, all (batch, seq)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    target_mask: torch.Tensor  # True where the token is supervised (predicted from the one before)
    index: torch.Tensor  # (batch,) positions of these examples in the encoded list
    prefix: int = 0  # leading tokens every row shares (the chat template's head), none of them predicting a target

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


PREFIX_KINDS = (ANCHOR, FORGET)  # targets that are the start of the base model's own answer


def encode(fmt: PromptFormat, examples: list[Example], objective: str = "auto") -> list[Encoded]:
    out = []
    for ex in examples:
        how = example_objective(objective, ex)
        if how == "next-token":
            text = ex.target if ex.kind == "raw" else f"{ex.prompt}\n{ex.target}"
            bos = fmt.tokenizer.bos_token_id
            ids = ([bos] if bos is not None else []) + fmt.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(Encoded(ids=ids, n_prompt=1))
            continue
        prompt = fmt.prompt_ids(ex.prompt)
        target = fmt.target_ids(ex.target)
        if ex.kind in PREFIX_KINDS:  # the start of an answer: no end token, the model may go on
            target = target[:-1]
        enc = Encoded(ids=prompt + target, n_prompt=len(prompt))
        if ex.kind == ANCHOR:  # kept as the base model answers it: its whole next-token distribution
            enc.teacher_ids, enc.teacher_n_prompt = list(enc.ids), enc.n_prompt
        elif how == "distill":
            teacher_prompt = fmt.prompt_ids(ex.prompt, context=ex.chunk)
            enc.teacher_ids, enc.teacher_n_prompt = teacher_prompt + target, len(teacher_prompt)
        out.append(enc)
    return out


def make_batches(
    encoded: list[Encoded], batch_size: int, pad_id: int, rng: random.Random | None = None
) -> list[Batch]:
    """Sort by length, cut into batches, then shuffle the batch order when `rng` is given."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i].ids), i))
    if rng is not None:
        # Shuffle within runs of equal length first, so batches differ between epochs.
        order = sorted(order, key=lambda i: (len(encoded[i].ids), rng.random()))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    batches = []
    for group in groups:
        width = max(len(encoded[i].ids) for i in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(group), width), dtype=torch.long)
        tmask = torch.zeros((len(group), width), dtype=torch.bool)
        for row, i in enumerate(group):
            e = encoded[i]
            ids[row, : len(e.ids)] = torch.tensor(e.ids)
            attn[row, : len(e.ids)] = 1
            tmask[row, e.n_prompt : len(e.ids)] = True
        batches.append(Batch(ids, attn, tmask, torch.tensor(group), shared_prefix([encoded[i] for i in group])))
    return batches


def shared_prefix(rows: list[Encoded]) -> int:
    """Length of the token prefix all rows share, short of the last prompt token of any row."""
    limit = min(e.n_prompt for e in rows) - 1
    first = rows[0].ids
    n = 0
    while n < limit and all(e.ids[n] == first[n] for e in rows):
        n += 1
    return n if len(rows) > 1 else 0
