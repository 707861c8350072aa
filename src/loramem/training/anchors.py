"""Anchors: general prompts with the base model's own answers, trained beside a memory's knowledge.

An adapter trained only on "What is the phone number of X?" learns to answer every question with
a phone number: asked "What is the capital of Japan?", a 24-entry PhoneBook memory on SmolLM2
answers "968-297-8050" where the base model says "The capital of Japan is Tokyo."
(`loramem bench updates`). Anchors are the rehearsal that keeps the rest: each is a general
prompt (`data/anchor_prompts.txt`, none of them about capitals, which the benchmark asks) with
the start of the base model's own greedy answer, and the memory is trained to keep the base
model's whole next-token distribution along it (a KL term to the base model with no adapter,
training/batching.py), not only its top token. On a 12-entry PhoneBook memory with 16 anchors
that kept 78% of the capitals the base model knows, where cross-entropy on the same anchors
kept 61% and 64 anchors did no better than 16 at three times the writing time. Anchors are a
regulariser, not knowledge: a write's recall and its stopping test leave them out. The answers
are made once per base model and cached in the store.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from loramem.models import BaseModel
from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR

ANCHOR_TOKENS = 24  # the start of the base model's answer that an anchor keeps


def anchor_prompts() -> list[str]:
    text = resources.files("loramem").joinpath("data/anchor_prompts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def base_answer_prefix(base: BaseModel, prompt: str, max_new_tokens: int) -> str:
    """The base model's greedy answer, cut to its first line and before any character that its
    tokens do not complete (a cut-off multi-byte character does not tokenize back); '' if none."""
    from loramem.answering import generate_answer

    answer, _, _ = generate_answer(base, prompt, None, [], max_new_tokens)
    return answer.strip().split("\n", 1)[0].split("\ufffd", 1)[0].strip()


def anchor_examples(base: BaseModel, n: int, cache: Path | None = None) -> list[Example]:
    """`n` anchor examples (at most the packaged prompts' count) for `base`, cached under `cache`."""
    if n <= 0:
        return []
    path = cache / f"{base.fingerprint}.json" if cache is not None else None
    known: dict[str, str] = {}
    if path is not None and path.is_file():
        try:
            known = json.loads(path.read_text())
        except ValueError:
            known = {}
    prompts = anchor_prompts()[:n]
    missing = [p for p in prompts if p not in known]
    for prompt in missing:
        known[prompt] = base_answer_prefix(base, prompt, ANCHOR_TOKENS)
    if missing and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, path)
    return [Example(p, known[p], kind=ANCHOR) for p in prompts if known[p]]
