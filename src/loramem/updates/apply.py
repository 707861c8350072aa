"""An update, end to end: plan, supervision for new documents, forget targets, training, verification,
and the next version committed atomically (a kill at any point leaves the current version listed).

An update is held to the recall a write of the same memory stops on (every record of a fact table;
a document's target or plateau floor, training/stopping.py). A version that falls short within the
epoch limit is not committed: the previous version stays current, nothing is listed, and the error
says how far it got and which flag tries harder. Committing a version that lost facts the user never
touched, and making it current, is the one outcome an update must not have (issue 39); a failed
update costs the training time only. `accept_below_target` commits it anyway, marked in its log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loramem.errors import BelowTargetError, LoramemError
from loramem.routing.index import memory_index
from loramem.store import MemoryRecord
from loramem.store.versions import split_pinned
from loramem.supervision import Source, read_sources
from loramem.supervision.examples import Example
from loramem.supervision.sources import RECORD_SUFFIXES, read_source, records_source
from loramem.supervision.stored import ANCHOR, FORGET, RECORD, Stored, load_documents, load_supervision, save_supervision
from loramem.training import TrainConfig
from loramem.training.stopping import required_recall
from loramem.training.trainer import read_back_adapter
from loramem.updates.base import DEFAULT_UPDATE, UPDATES, Trained, UpdateJob
from loramem.updates.plan import Plan, plan_update

FORGET_TOKENS = 16  # the start of the base model's answer, trained in place of a removed one


@dataclass
class UpdateResult:
    record: MemoryRecord  # the new current version
    previous: int  # the version it was made from
    method: str
    change: dict
    seconds: float
    epochs: int
    recall: float  # read-back of every current example
    target: float  # the recall the update had to reach (what a write of the memory stops on)
    superseded_still: float  # share of superseded answers the new version still reproduces
    removed_still: float  # share of removed answers it still reproduces
    notes: list[str] = field(default_factory=list)
    generator: str = ""

    @property
    def below_target(self) -> bool:
        """Committed under `accept_below_target` with a recall short of the target."""
        return self.recall < self.target


def _removals(paths: Sequence[str | Path], records: Sequence[dict] | None) -> list[Source | str]:
    """Record files (their questions go) and document names; a document need not exist any more."""
    out: list[Source | str] = []
    for p in paths:
        path = Path(p)
        out.append(read_source(path) if path.suffix.lower() in RECORD_SUFFIXES else path.name)
    if records:
        out.append(records_source(records, "removed records"))
    return out


def _config(record: MemoryRecord, epochs: int | None) -> TrainConfig:
    """The memory's own training settings, with this update's epoch limit (a round's) where given."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in record.config.items() if k in names})
    return dataclasses.replace(config, epochs=epochs) if epochs is not None else config


def _short_of_target(name: str, record: MemoryRecord, recall: float, target: float, n: int, trained: Trained,
                     config: TrainConfig) -> BelowTargetError:
    """The one-line refusal of a next version that read back `recall` of its `n` examples, under `target`."""
    itself = f" (it read back {record.recall:.0%} itself)" if record.recall < target else ""
    return BelowTargetError(
        f"update of {name!r} not committed: its next version read back {recall:.0%} of its {n} examples, short of "
        f"the memory's target {target:.0%}, after {trained.epochs} epochs ({trained.rounds} training round(s) "
        f"of at most {config.epochs} epochs); version {record.version} stays current{itself} and nothing was changed. "
        f"Try again with more epochs (--epochs {2 * config.epochs}) or --method retrain, or keep it anyway with "
        "--accept-below-target")


def _sources(current: list[Stored], documents: dict[str, str]) -> list[Source]:
    """The next version's inputs as Sources (for its routing embedding and its catalogue text)."""
    out: list[Source] = []
    for origin in dict.fromkeys(s.origin for s in current):
        records = [s.example for s in current if s.origin == origin and s.example.kind == RECORD]
        text = documents.get(origin) if not records else "\n".join(f"{r.prompt} {r.target}" for r in records)
        if text:
            out.append(Source(path=Path(origin), text=text, digest=hashlib.sha256(text.encode()).hexdigest(),
                              records=records))
    return out


def _forget_examples(mem, removed: list[Stored], notes: list[str]) -> list[Stored]:
    """For each removed question, the start of the base model's own answer: what the memory says now."""
    from loramem.training.anchors import base_answer_prefix

    out = []
    for s in removed:
        answer = base_answer_prefix(mem.base, s.example.prompt, FORGET_TOKENS)
        if not answer:
            notes.append(f"no usable base-model answer to {s.example.prompt!r}: its removal is trained by replay only")
            continue
        if s.example.target and s.example.target in answer:
            notes.append(f"the base model itself answers {s.example.prompt!r} with the removed answer")
        out.append(Stored(Example(s.example.prompt, answer, kind=FORGET, chunk=s.example.chunk), s.origin))
    return out


def _share(base, folder: Path, stored: list[Stored]) -> float:
    if not stored:
        return 0.0
    return read_back_adapter(base, folder, [s.example for s in stored]).float().mean().item()


@dataclass
class Prepared:
    record: MemoryRecord  # the current version
    folder: Path
    plan: Plan
    documents: dict[str, str]  # the current version's documents by file name


def prepare_update(mem, name: str, paths: Sequence[str | Path] = (), remove: Sequence[str | Path] = (),
                   records: Sequence[dict] | None = None, documents: Mapping[str, str] | None = None,
                   remove_records: Sequence[dict] | None = None) -> Prepared:
    """Check an update and plan it, without loading a model: every bad request fails here."""
    plain, pinned = split_pinned(name)
    if pinned is not None:
        raise LoramemError(f"an update starts from the current version: name {plain!r}, not {name!r} "
                           f"(to start from version {pinned}, loramem rollback {plain} {pinned} first)")
    record = mem.store.get(name)
    adding = bool(paths or records or documents)
    if not adding and not (remove or remove_records):
        raise LoramemError("give files (or records, documents) to add, or --remove what should go")
    additions = read_sources(paths, records, documents) if adding else []
    removals = _removals(remove, remove_records)
    folder = mem.store.adapter_path(record)
    stored = load_supervision(folder, name)
    held = load_documents(folder)
    return Prepared(record, folder, plan_update(name, stored, additions, removals, held), held)


def update_memory(
    mem,
    name: str,
    paths: Sequence[str | Path] = (),
    remove: Sequence[str | Path] = (),
    records: Sequence[dict] | None = None,
    documents: Mapping[str, str] | None = None,
    remove_records: Sequence[dict] | None = None,
    method: str | None = None,
    epochs: int | None = None,
    accept_below_target: bool = False,
) -> UpdateResult:
    """Add, supersede and remove knowledge in memory `name`; see `Memory.update`.

    Raises BelowTargetError, committing nothing, when the next version reads back less than a write
    of the memory stops on, unless `accept_below_target`.
    """
    start = time.perf_counter()
    mem.store.check_writable()  # before any training is spent on a version that cannot be listed
    method = method or DEFAULT_UPDATE
    updater = UPDATES.get(method)()
    prepared = prepare_update(mem, name, paths, remove, records, documents, remove_records)
    record, folder, plan, held_docs = prepared.record, prepared.folder, prepared.plan, prepared.documents
    mem._check_base([record])

    notes: list[str] = []
    generator = ""
    if plan.new_documents:
        config = record.config
        sup = mem._build(plan.new_documents, config.get("format") or "auto", config.get("generator_spec") or "auto",
                         int(config.get("seed", 0)), None, None)
        plan.added += [Stored(e, o) for e, o in zip(sup.examples, sup.origins)]
        notes += sup.notes
        generator = sup.generator
    forget = _forget_examples(mem, plan.removed, notes)
    documents_now = {k: t for k, t in held_docs.items()
                     if k not in {s.origin for s in plan.removed + plan.superseded}}
    documents_now.update({s.path.name: s.text for s in plan.new_documents})
    config = _config(record, epochs)
    next_stored = plan.kept + plan.added + forget
    current = [s for s in next_stored if s.example.kind not in (FORGET, ANCHOR)]  # the knowledge itself
    if not current:
        raise LoramemError(f"the update would remove everything memory {name!r} holds; remove the memory instead "
                           f"(loramem rm {name})")
    with mem.store.staging() as staged:
        trained = updater.run(UpdateJob(
            base=mem.base, config=config, previous=folder, kept=[s.example for s in plan.kept],
            change=[s.example for s in plan.added + forget], save_to=staged, progress=mem.progress))
        recall = _share(mem.base, staged, current)
        target = required_recall(config, [s.example for s in current])
        if recall < target and not accept_below_target:
            raise _short_of_target(name, record, recall, target, len(current), trained, config)
        save_supervision(staged, next_stored, documents_now)
        superseded_still = _share(mem.base, staged, [s for s in plan.superseded if s.example.kind == RECORD])
        removed_still = _share(mem.base, staged, plan.removed)
        seconds = time.perf_counter() - start
        sources = _sources(current, documents_now)
        kinds: dict[str, int] = {}
        for s in next_stored:
            kinds[s.example.kind] = kinds.get(s.example.kind, 0) + 1
        verified = {"method": method, "seconds": round(seconds, 2), "recall": recall, "target": target,
                    "superseded_still": superseded_still, "removed_still": removed_still,
                    "epochs": trained.epochs, "rounds": trained.rounds, "trained_examples": trained.examples}
        if recall < target:
            verified["accepted_below_target"] = True
            notes.append(f"read back {recall:.0%}, short of the memory's target {target:.0%}: committed and made "
                         "current because below-target updates were accepted")
        new = dataclasses.replace(
            record, folder="", recall=recall, examples=len(next_stored), tokens=trained.tokens,
            sources=[s.path.name for s in sources], formats=sorted(kinds),
            source_hash=hashlib.sha256("".join(s.digest for s in sources).encode()).hexdigest(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            document="\n\n".join(s.text for s in sources),
            config={**record.config, "examples_by_kind": kinds, "epochs_run": trained.epochs,
                    "steps": trained.steps, "update": {**plan.change, **verified}},
        )
        mem.store.commit(staged, new, parent=record.version, change={**plan.change, **verified},
                         index=memory_index(sources, [s.example for s in current]))
    return UpdateResult(record=new, previous=record.version, method=method, change=plan.change, seconds=seconds,
                        epochs=trained.epochs, recall=recall, target=target, superseded_still=superseded_still,
                        removed_still=removed_still, notes=notes, generator=generator)

