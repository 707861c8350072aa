"""When a write stops: its read-back reaches the target, or (for documents) it has stopped rising.

A fact table is written until every record reads back: that is what makes it a reliable store.
A document's generated supervision holds a few targets the model keeps missing by one near-tied
token long after its loss is ~0.01; PaperQA paper 7 (64 examples) read back 95% from epoch 11 to
epoch 14 and would have trained on to the 40-epoch cap at 30 s an epoch. So a document's write also
stops once its in-training recall is at least PLATEAU_FLOOR and has not risen for `patience` epochs.
"""

from __future__ import annotations

from collections.abc import Callable

from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR, RECORD

PLATEAU_FLOOR = 0.9
DOCUMENT_PATIENCE = 2  # epochs without a rise; the default for memories of documents


def resolve_patience(patience: int | None, examples: list[Example]) -> int:
    """The patience a write uses: as given, else DOCUMENT_PATIENCE for documents and 0 (never) for fact tables."""
    if patience is not None:
        return patience
    knowledge = [e for e in examples if e.kind != ANCHOR]
    return 0 if all(e.kind == RECORD for e in knowledge) else DOCUMENT_PATIENCE


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
