"""What an update changes: the memory's stored supervision against the new inputs and removals.

Pure bookkeeping, no model: records are matched by question (whitespace and case folded),
documents by file name. Every bad request is refused here, before any model is loaded:
contradicting records, removals the memory does not hold, an update that changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loramem.errors import LoramemError
from loramem.supervision.sources import Source
from loramem.supervision.stored import ANCHOR, FORGET, RECORD, Stored


def question_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass
class Plan:
    """The next version's supervision, and what it changed from the current one."""

    kept: list[Stored]  # current examples that stay as they are (forget examples included)
    added: list[Stored] = field(default_factory=list)  # new and superseding examples
    superseded: list[Stored] = field(default_factory=list)  # old examples replaced by an answer or a revision
    removed: list[Stored] = field(default_factory=list)  # old examples removed: their answers must go
    new_documents: list[Source] = field(default_factory=list)  # documents still to be turned into examples
    change: dict = field(default_factory=dict)  # counts for `loramem log`

    @property
    def current(self) -> list[Stored]:
        """The knowledge the next version holds (without forget examples)."""
        return [s for s in self.kept + self.added if s.example.kind != FORGET]


def _held_records(stored: list[Stored]) -> dict[str, Stored]:
    return {question_key(s.example.prompt): s for s in stored if s.example.kind == RECORD}


def _documents(stored: list[Stored]) -> set[str]:
    return {s.origin for s in stored if s.example.kind not in (RECORD, FORGET, ANCHOR)}


def _new_records(sources: list[Source]) -> dict[str, Stored]:
    """The update's records by question; two different answers to one question are refused."""
    out: dict[str, Stored] = {}
    for source in sources:
        for ex in source.records:
            key = question_key(ex.prompt)
            if key in out and out[key].example.target != ex.target:
                raise LoramemError(f"the update contradicts itself: {ex.prompt!r} is answered both "
                                   f"{out[key].example.target!r} and {ex.target!r}; nothing was changed")
            out[key] = Stored(ex, source.path.name)
    return out


def plan_update(memory: str, stored: list[Stored], additions: list[Source], removals: list[Source | str],
                texts: dict[str, str] | None = None) -> Plan:
    """The plan for updating `memory` (whose supervision is `stored`) with `additions` and `removals`.

    A removal is a records source (its questions are removed) or the file name of a document the
    memory holds. A document in `additions` named like a held one replaces it (a revision), unless
    its text is the one held (`texts`: held documents' texts by file name).
    """
    held = _held_records(stored)
    documents = _documents(stored)
    drop: set[int] = set()  # indexes into `stored`
    plan = Plan(kept=[])
    counts = dict.fromkeys(("added", "superseded", "unchanged", "removed", "documents_added",
                            "documents_revised", "documents_removed"), 0)
    index = {id(s): i for i, s in enumerate(stored)}

    for removal in removals:
        if isinstance(removal, str):
            if removal not in documents:
                held_docs = ", ".join(sorted(documents)) or "none"
                raise LoramemError(f"memory {memory!r} holds no document named {removal!r} (its documents: "
                                   f"{held_docs}); nothing was changed")
            gone = [i for i, s in enumerate(stored) if s.origin == removal and s.example.kind != FORGET]
            drop.update(gone)
            plan.removed += [stored[i] for i in gone]
            counts["documents_removed"] += 1
            continue
        for ex in removal.records:
            old = held.get(question_key(ex.prompt))
            if old is None or index[id(old)] in drop:
                raise LoramemError(f"{removal.path.name}: memory {memory!r} holds no record {ex.prompt!r} to "
                                   "remove; nothing was changed")
            if old.example.target != ex.target:
                raise LoramemError(f"{removal.path.name}: memory {memory!r} answers {ex.prompt!r} with "
                                   f"{old.example.target!r}, not {ex.target!r}; nothing was changed")
            drop.add(index[id(old)])
            plan.removed.append(old)
            counts["removed"] += 1

    new_records = _new_records([s for s in additions if s.is_records])
    removed_keys = {question_key(s.example.prompt) for s in plan.removed}
    clash = sorted(set(new_records) & removed_keys)
    if clash:
        raise LoramemError(f"the update both adds and removes {new_records[clash[0]].example.prompt!r}; "
                           "nothing was changed")
    for key, new in new_records.items():
        old = held.get(key)
        if old is not None and old.example.target == new.example.target:
            counts["unchanged"] += 1
            continue
        if old is not None:
            drop.add(index[id(old)])
            plan.superseded.append(old)
            counts["superseded"] += 1
        else:
            counts["added"] += 1
        plan.added.append(new)
    # A question asked again after its removal: its forget example goes.
    drop.update(i for i, s in enumerate(stored) if s.example.kind == FORGET
                and question_key(s.example.prompt) in new_records)

    for source in (s for s in additions if not s.is_records):
        name = source.path.name
        if (texts or {}).get(name) == source.text:
            counts["unchanged"] += 1
            continue
        if name in documents:
            revised = [i for i, s in enumerate(stored) if s.origin == name and s.example.kind != FORGET]
            drop.update(revised)
            plan.superseded += [stored[i] for i in revised]
            counts["documents_revised"] += 1
        else:
            counts["documents_added"] += 1
        plan.new_documents.append(source)

    plan.kept = [s for i, s in enumerate(stored) if i not in drop]
    plan.change = {k: n for k, n in counts.items() if n}
    if not (plan.added or plan.removed or plan.superseded or plan.new_documents):
        raise LoramemError(f"the update changes nothing: memory {memory!r} already holds every record given "
                           f"({counts['unchanged']} unchanged)")
    return plan
