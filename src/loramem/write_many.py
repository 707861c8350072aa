"""Writing many memories at once: `Memory.write_collection(..., batch_memories=N)`.

Each memory goes through `Memory.write` exactly as when written alone (checks, supervision,
record, catalogue entry, commit); only its training is shared. Write runs twice per memory,
with a `trainer` in place of `train_memory`:

1. planning: the trainer records the examples and settings write would train on, and stops the
   write there (nothing is staged or committed; the supervision it built is cached in the store);
2. all planned memories train together, N at a time (`loramem.training.multi.train_memories`);
3. as each memory is done, write runs again, and its trainer hands over the folder trained in
   step 2 (or, should the examples or settings differ from the plan, trains it alone).

So a name that is taken, or a bad setting, fails in step 1, before any training; memories are
committed as they finish, so an interrupted corpus write keeps those.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loramem.errors import LoramemError
from loramem.training import TrainConfig, TrainResult, train_memory
from loramem.training.multi import MemoryJob, train_memories

if TYPE_CHECKING:
    from loramem.api import Memory, WriteResult


class _Planned(Exception):
    """Stops a planning write at its training step, carrying what it would train."""

    def __init__(self, job: MemoryJob) -> None:
        super().__init__("planned")
        self.job = job


def _plan(base, examples, config: TrainConfig, staged: Path, on_epoch: Callable | None = None, **_) -> TrainResult:
    raise _Planned(MemoryJob(list(examples), config, staged, on_epoch))


def _handing_over(planned: MemoryJob, trained: Path, result: TrainResult) -> Callable[..., TrainResult]:
    """A trainer that moves the memory trained batched into write's staging folder."""

    def trainer(base, examples, config: TrainConfig, staged: Path, **kw) -> TrainResult:
        if list(examples) != planned.examples or config != planned.config:
            return train_memory(base, examples, config, staged, **kw)  # not what was trained: train it alone
        for f in trained.iterdir():
            os.replace(f, staged / f.name)
        return result

    return trainer


def _reporting(i: int, on_trained: Callable[[int, TrainResult], None] | None) -> Callable[..., TrainResult]:
    def trainer(*args, **kw) -> TrainResult:
        result = train_memory(*args, **kw)
        if on_trained is not None:
            on_trained(i, result)
        return result

    return trainer


def write_many(mem: Memory, writes: list[dict], batch_memories: int,
               on_trained: Callable[[int, TrainResult], None] | None = None) -> list[WriteResult]:
    """`mem.write(**w)` for each of `writes`, training up to `batch_memories` memories together;
    the WriteResults in order. One memory at a time (plain writes) with batch_memories 1, with a
    single write, or with `resume` (checkpoints belong to one write each). `on_trained(i, result)`
    gets each memory's TrainResult (for benchmarks: throughput, train seconds)."""
    if batch_memories < 1:
        raise LoramemError(f"batch_memories must be at least 1, got {batch_memories}")
    if batch_memories == 1 or len(writes) == 1 or any(w.get("resume") for w in writes):
        return [mem.write(**w, trainer=_reporting(i, on_trained)) for i, w in enumerate(writes)]
    names = [w["name"] for w in writes]
    if len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise LoramemError(f"the collection would write {', '.join(repeated)} twice: give its inputs distinct names")
    plans, plan_seconds = [], []
    for w in writes:
        tick = time.perf_counter()
        try:
            mem.write(**w, trainer=_plan)
        except _Planned as planned:
            plans.append(planned.job)
        else:
            raise RuntimeError("Memory.write returned without calling its trainer")
        plan_seconds.append(time.perf_counter() - tick)
    results: dict[int, WriteResult] = {}
    with mem.store.staging() as folder:
        jobs = [dataclasses.replace(p, save_to=folder / f"{i:05d}") for i, p in enumerate(plans)]

        def commit(i: int, trained: TrainResult) -> None:
            if on_trained is not None:
                on_trained(i, trained)
            tick = time.perf_counter()
            written = mem.write(**writes[i], trainer=_handing_over(plans[i], jobs[i].save_to, trained))
            seconds = plan_seconds[i] + trained.seconds + time.perf_counter() - tick
            results[i] = dataclasses.replace(written, seconds=seconds)

        train_memories(mem.base, jobs, batch_memories, progress=mem.progress, on_done=commit)
    return [results[i] for i in range(len(writes))]
