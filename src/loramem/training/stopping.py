"""When a write stops: its read-back reaches the target, or (for documents) it has stopped rising.

A fact table is written until every record reads back: that is what makes it a reliable store.
A document's generated supervision holds a few targets the model keeps missing by one near-tied
token long after its loss is ~0.01: PaperQA paper 7 (64 examples) read back 95% from epoch 11 to
14, then crept up one example at a time past epoch 17, at 30-40 s an epoch on 2 cores, where a
document is meant to be written in 10 minutes. So a document's write stops at DOCUMENT_TARGET, or
once its in-training recall is at least PLATEAU_FLOOR and has not risen for `patience` epochs.
"""

from __future__ import annotations

from collections.abc import Callable

from loramem.supervision.examples import Example
from loramem.supervision.stored import is_fact_table

PLATEAU_FLOOR = 0.9
DOCUMENT_PATIENCE = 2  # epochs without a rise; the default for memories of documents
DOCUMENT_TARGET = 0.95


def resolve_patience(patience: int | None, examples: list[Example]) -> int:
    """The patience a write uses: as given, else DOCUMENT_PATIENCE for documents and 0 (never) for fact tables."""
    if patience is not None:
        return patience
    return 0 if is_fact_table(e.kind for e in examples) else DOCUMENT_PATIENCE


def resolve_target(target: float | None, examples: list[Example]) -> float:
    """The recall a write aims at: as given, else 1.0 for fact tables and DOCUMENT_TARGET for documents."""
    if target is not None:
        return target
    return 1.0 if is_fact_table(e.kind for e in examples) else DOCUMENT_TARGET


def required_recall(config, examples: list[Example]) -> float:
    """The lowest read-back recall a write of `examples` with TrainConfig `config` stops on before its
    epoch limit: its target, or PLATEAU_FLOOR where the plateau rule may end it (documents). An update
    must reach it for its version to become current (updates/apply.py)."""
    target = resolve_target(config.target_recall, examples)
    return min(target, PLATEAU_FLOOR) if resolve_patience(config.patience, examples) else target


def stopping_for(config, examples: list[Example], state: dict | None = None) -> Stopping:
    """The stopping rule of a write of `examples` with TrainConfig `config`."""
    return Stopping(resolve_target(config.target_recall, examples), resolve_patience(config.patience, examples), state)


class Stopping:
    """Decides at the end of each epoch whether a write is done (train_memory and the batched trainer share it)."""

    def __init__(self, target: float, patience: int, state: dict | None = None) -> None:
        self.target, self.patience = target, patience
        self.best, self.since = (state["best"], state["since"]) if state else (-1.0, 0)
        self.verified: float | None = None  # the read-back recall that ended the write

    @property
    def state(self) -> dict:
        return {"best": self.best, "since": self.since}

    def done(self, proxy: float, recall_now: Callable[[], float]) -> bool:
        """`proxy`: the epoch's recall as reproduced while training; `recall_now`: a real read-back."""
        if proxy > self.best:
            self.best, self.since = proxy, 0
        else:
            self.since += 1
        if proxy >= self.target:  # cheap proxy first; confirm with a real read-back
            recall = recall_now()
            if recall >= self.target:
                self.verified = recall
                return True
        if self.patience and self.best >= PLATEAU_FLOOR and self.since >= self.patience:
            self.verified = recall_now()
            return True
        return False
