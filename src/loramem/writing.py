"""A write in three steps: plan (checks and supervision, no training), train, commit.

`Memory.write` runs them in a row. `write_many` plans every memory of a collection first (so a
taken name or a bad setting fails before any training), trains them together, and commits each
as it is done, exactly as a single write would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loramem.errors import LoramemError
from loramem.routing.index import memory_index
from loramem.store import MemoryRecord, validate_name
from loramem.supervision import ChunkSettings, Source, Supervision, parse_format, read_sources
from loramem.supervision.generators import check_generator
from loramem.supervision.limits import InputLimits
from loramem.supervision.stored import Stored, save_supervision
from loramem.training import TrainConfig, TrainResult, train_memory
from loramem.training.config import parse_layers, parse_rank

if TYPE_CHECKING:
    from loramem.api import Memory


@dataclass
class WriteResult:
    record: MemoryRecord
    seconds: float
    epochs: int
    kinds: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # where a format made fewer examples than asked
    resumed_from_epoch: int = 0
    generator: str = ""  # who wrote the generated supervision ('' when none was generated)


@dataclass
class PlannedWrite:
    """Everything a write decided before training: what it trains, with what, and under which name."""

    name: str
    replace: bool
    config: TrainConfig
    sources: list[Source]
    supervision: Supervision  # anchors included
    format: str
    generator: str
    collection: str
    notes: list[str]
    checkpoint: Path
    resume: bool
    on_epoch: Callable[[int, float], None] | None
    start: float  # perf_counter when the write began
    planning_seconds: float = 0.0  # checks and supervision


def default_name(paths: Sequence[str | Path]) -> str:
    stem = Path(paths[0]).stem
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip(".-_") or "memory"
    return name[:128]


def train_config(config: TrainConfig | None, settings: dict) -> TrainConfig:
    """`config` (default: TrainConfig()) with `settings` on top; an unknown setting is refused by name."""
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - valid)
    if unknown:
        raise LoramemError(f"unknown training setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return dataclasses.replace(config, **settings) if config is not None else TrainConfig(**settings)


def plan_write(
    mem: Memory,
    paths: Sequence[str | Path] = (),
    name: str | None = None,
    replace: bool = False,
    format: str = "auto",
    generator: str = "auto",
    config: TrainConfig | None = None,
    resume: bool = False,
    chunking: ChunkSettings | None = None,
    generator_options: dict | None = None,
    rank: int | str | None = None,
    collection: str = "",
    on_epoch: Callable[[int, float], None] | None = None,
    records: Sequence[dict] | None = None,
    documents: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
    **settings,
) -> PlannedWrite:
    """Check a write and build its supervision (see `Memory.write`); every bad request fails here."""
    start = time.perf_counter()
    config = train_config(config, settings)
    rank = None if rank is None else parse_rank(rank)
    if isinstance(rank, int):
        config = dataclasses.replace(config, rank=rank)
    if name is None and not paths:
        raise LoramemError("give a name for a memory written from records or documents in memory")
    name = validate_name(default_name(paths) if name is None else name)  # a name given empty is refused
    mem.store.check_writable_name(name, replace)
    parse_format(format)
    check_generator(generator)
    sources = read_sources(paths, records, documents, limits)
    sup = mem._build(sources, format, generator, config.seed, chunking, generator_options, limits=limits)
    notes = list(sup.notes)
    if rank == "auto":
        from loramem.capacity import load_saved, recommend

        sheet = load_saved(mem.base.fingerprint)
        picked, modules = recommend(sheet, len(sup.examples))
        config = dataclasses.replace(config, rank=picked)
        notes.append(f"rank auto: {picked} for {len(sup.examples)} examples "
                     f"({'this model' if sheet else 'built-in'} datasheet)"
                     + (f"; they exceed its capacity: split them over {modules} memories" if modules > 1 else ""))
    if config.anchors:
        from loramem.training.anchors import anchor_examples

        anchors = anchor_examples(mem.base, config.anchors, mem.store.path / "cache" / "anchors")
        sup = dataclasses.replace(sup, examples=sup.examples + anchors, origins=sup.origins + ["anchors"] * len(anchors))
    return PlannedWrite(name, replace, config, sources, sup, format, generator, collection, notes,
                        mem.store.path / "checkpoints" / f"{name}.pt", resume, on_epoch, start,
                        time.perf_counter() - start)


def commit_write(mem: Memory, plan: PlannedWrite, staged: Path, result: TrainResult) -> WriteResult:
    """Record and commit the memory trained into `staged` (a store staging folder) for `plan`."""
    config, sup, sources = plan.config, plan.supervision, plan.sources
    save_supervision(staged, [Stored(e, o) for e, o in zip(sup.examples, sup.origins)],
                     {s.path.name: s.text for s in sources if not s.is_records})
    layers = parse_layers(config.layers, mem.base.model.config.num_hidden_layers)
    record = MemoryRecord(
        name=plan.name,
        folder="",
        source_hash=hashlib.sha256("".join(s.digest for s in sources).encode()).hexdigest(),
        sources=[str(s.path.name) for s in sources],
        base_model=mem.base.name,
        base_fingerprint=mem.base.fingerprint,
        rank=config.rank,
        formats=sorted(sup.kinds),
        examples=result.n_examples,
        tokens=result.tokens,
        parameters=result.parameters,
        recall=result.recall,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        document="\n\n".join(s.text for s in sources),
        collection=plan.collection,
        config={**asdict(config), "epochs_run": result.epochs, "steps": result.steps,
                "train_seconds": round(result.seconds, 2),
                "generator": sup.generator or "none (no generated formats)", "generator_spec": plan.generator,
                "format": str(parse_format(plan.format)), "examples_by_kind": sup.kinds,
                "placement": {"target_modules": config.target_modules,
                              "layers": layers if layers is not None else "all"}},
    )
    mem.store.commit(staged, record, replace=plan.replace, index=memory_index(sources, sup.examples),
                     change={"seconds": round(time.perf_counter() - plan.start, 2), "recall": record.recall,
                             "examples": record.examples})
    plan.checkpoint.unlink(missing_ok=True)
    notes = list(plan.notes)
    if plan.resume and not result.resumed_from_epoch:
        notes.append("no checkpoint of this write (same name, inputs and settings) to resume: started afresh")
    return WriteResult(record=record, seconds=time.perf_counter() - plan.start, epochs=result.epochs,
                       kinds=sup.kinds, notes=notes, resumed_from_epoch=result.resumed_from_epoch,
                       generator=sup.generator)


def write_planned(mem: Memory, plan: PlannedWrite,
                  on_trained: Callable[[TrainResult], None] | None = None) -> WriteResult:
    """Train `plan`'s memory alone (checkpointed, resumable) and commit it."""
    with mem.store.staging() as staged:
        result = train_memory(mem.base, plan.supervision.examples, plan.config, staged, progress=mem.progress,
                              checkpoint=plan.checkpoint, resume=plan.resume, on_epoch=plan.on_epoch)
        if on_trained is not None:
            on_trained(result)
        return commit_write(mem, plan, staged, result)
