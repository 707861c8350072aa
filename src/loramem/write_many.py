"""Writing many memories at once: `Memory.write_collection(..., batch_memories=N)`.

Each memory is planned, recorded and committed exactly as `Memory.write` does it alone
(loramem/writing.py); only its training is shared:

1. every write is planned (checks and supervision), so a name that is taken or a bad setting
   fails before any training;
2. the planned memories train together, N at a time (`loramem.training.train_memories`);
3. each memory is committed as soon as it is done, so an interrupted corpus write keeps those.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loramem.errors import LoramemError
from loramem.training import MemoryJob, TrainResult, train_memories
from loramem.writing import WriteResult, commit_write, plan_write, write_planned

if TYPE_CHECKING:
    from loramem.api import Memory


def write_many(mem: Memory, writes: list[dict], batch_memories: int,
               on_trained: Callable[[int, TrainResult], None] | None = None) -> list[WriteResult]:
    """`mem.write(**w)` for each of `writes`, training up to `batch_memories` memories together;
    the WriteResults in order. One memory at a time (plain writes) with batch_memories 1, with a
    single write, or with `resume` (checkpoints belong to one write each). `on_trained(i, result)`
    gets each memory's TrainResult (for benchmarks: throughput, train seconds)."""
    if batch_memories < 1:
        raise LoramemError(f"batch_memories must be at least 1, got {batch_memories}")
    if batch_memories == 1 or len(writes) == 1 or any(w.get("resume") for w in writes):
        return [write_planned(mem, plan_write(mem, **w), on_trained and functools.partial(on_trained, i))
                for i, w in enumerate(writes)]
    names = [w["name"] for w in writes]
    if len(set(names)) < len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise LoramemError(f"the collection would write {', '.join(repeated)} twice: give its inputs distinct names")
    plans = [plan_write(mem, **w) for w in writes]
    results: dict[int, WriteResult] = {}
    with mem.store.staging() as folder:
        jobs = [MemoryJob(list(p.supervision.examples), p.config, folder / f"{i:05d}", p.on_epoch)
                for i, p in enumerate(plans)]

        def commit(i: int, trained: TrainResult) -> None:
            if on_trained is not None:
                on_trained(i, trained)
            tick = time.perf_counter()
            with mem.store.staging() as staged:
                for f in jobs[i].save_to.iterdir():
                    os.replace(f, staged / f.name)
                written = commit_write(mem, plans[i], staged, trained)
            # its share of the shared time: planning it, training it, committing it
            results[i] = dataclasses.replace(written, seconds=trained.seconds + time.perf_counter() - tick
                                             + plans[i].planning_seconds)

        train_memories(mem.base, jobs, batch_memories, progress=mem.progress, on_done=commit)
    return [results[i] for i in range(len(writes))]
