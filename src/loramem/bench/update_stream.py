"""A stream of updates to one fact-table memory, and the truth to check each version against.

Built from any records (the seed paper's PhoneBook by default): the first `start` records are
written, then every update adds new records, changes the answers of some current ones (a new
answer of the same shape: each digit redrawn, or another record's answer where there are none),
deletes some, and may add CounterFact edits. `Truth` follows what the memory should hold.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from loramem.errors import LoramemError
from loramem.supervision.examples import Example


@dataclass
class Update:
    records: list[dict]  # to add or supersede
    removed: list[dict]  # to delete
    kinds: dict[str, int]  # added, changed, deleted, edits


@dataclass
class Truth:
    """What the memory should answer, and the answers it should no longer give."""

    current: dict[str, str] = field(default_factory=dict)  # question -> answer
    superseded: dict[str, set[str]] = field(default_factory=dict)  # question -> old answers
    deleted: dict[str, str] = field(default_factory=dict)  # question -> removed answer

    def apply(self, update: Update) -> None:
        for r in update.removed:
            self.deleted[r["question"]] = self.current.pop(r["question"])
        for r in update.records:
            q, a = r["question"], r["answer"]
            if q in self.current and self.current[q] != a:
                self.superseded.setdefault(q, set()).add(self.current[q])
            self.deleted.pop(q, None)
            self.current[q] = a
        for q, old in self.superseded.items():
            old.discard(self.current.get(q, ""))

    def superseded_pairs(self) -> list[tuple[str, str]]:
        return [(q, a) for q, answers in sorted(self.superseded.items()) if q in self.current for a in sorted(answers)]


def _row(e: Example) -> dict:
    return {"question": e.prompt, "answer": e.target}


def changed_answer(answer: str, rng: random.Random, others: list[str]) -> str:
    """A new answer of the same shape: its digits redrawn (so a phone number stays one)."""
    if re.search(r"\d", answer):
        while True:
            new = re.sub(r"\d", lambda _m: str(rng.randint(0, 9)), answer)
            if new != answer:
                return new
    choices = [o for o in others if o != answer]
    if not choices:
        raise LoramemError("cannot change an answer: the records hold no other answer to take")
    return rng.choice(choices)


def make_stream(records: list[Example], start: int, updates: int, add: int, change: int, delete: int,
                edits: list[Example] = (), edits_per_update: int = 0, seed: int = 0) -> tuple[list[dict], list[Update]]:
    """The first write's rows and `updates` updates; refuses sizes the records cannot supply."""
    needed = start + updates * add
    if len(records) < needed:
        raise LoramemError(f"the stream needs {needed} records ({start} + {updates} updates x {add} added); "
                           f"the data holds {len(records)}")
    if len(edits) < updates * edits_per_update:
        raise LoramemError(f"the stream needs {updates * edits_per_update} CounterFact edits; found {len(edits)}")
    rng = random.Random(seed)
    first = [_row(e) for e in records[:start]]
    current = {r["question"]: r["answer"] for r in first}
    answers = [e.target for e in records]
    table = {e.prompt for e in records}
    stream = []
    for k in range(updates):
        new = [_row(e) for e in records[start + k * add: start + (k + 1) * add]]
        held = sorted(q for q in current if q in table)  # changes and deletions touch the fact table
        if len(held) < change + delete:
            raise LoramemError(f"update {k + 1} would change or delete more records than the memory holds")
        touched = rng.sample(held, change + delete)
        changed = [{"question": q, "answer": changed_answer(current[q], rng, answers)} for q in touched[:change]]
        removed = [{"question": q, "answer": current[q]} for q in touched[change:]]
        cf = [_row(e) for e in edits[k * edits_per_update: (k + 1) * edits_per_update]]
        update = Update(records=new + changed + cf, removed=removed,
                        kinds={"added": len(new), "changed": len(changed), "deleted": len(removed), "edits": len(cf)})
        for r in removed:
            current.pop(r["question"])
        for r in update.records:
            current[r["question"]] = r["answer"]
        stream.append(update)
    return first, stream
