"""Routing latency in a collection of 1,000 or 10,000 memories, from the bench's own indexed memories.

The memories of the bench's collection (papers and distractors, with their stored index items
and embeddings) are listed again and again under new names into a fresh catalogue until it holds
N memories, so the index is as large as N such memories make it; the gold questions are then
routed among all N. A listed copy keeps its source's adapter folder (`adapters/...` in the same
store when the source was written), so the rerank reads real adapters through the adapter cache.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from loramem.routing.index import MemoryIndex

SIZES = (1000, 10000)
QUESTIONS = 60  # routed per size, evenly spread over the gold questions


def fill_catalogue(source, target_path: Path, n: int, collection: str) -> None:
    """List `n` copies (cycling) of `source`'s memories of `collection` into the store at `target_path`."""
    from loramem.store import MemoryStore

    names = source.names(collection)
    vectors, items = source.embeddings(names), source.index_items()
    target = MemoryStore(target_path)
    for folder in {source.get(name).folder for name in names}:  # the copies read their sources' adapters
        link, real = target.path / folder, source.path / folder
        if real.is_dir() and not link.exists():
            link.symlink_to(real.resolve(), target_is_directory=True)
    have = target.count(collection)
    entries = []
    for i in range(have, n):
        record = source.get(names[i % len(names)])
        copy = dataclasses.replace(record, name=f"{record.name}--{i:05d}")
        v, it = vectors.get(record.name), items.get(record.name)
        index = MemoryIndex([k for k, _ in it], [t for _, t in it], v) if v is not None and it else None
        entries.append((copy, index))
        if len(entries) == 1000:
            target.add_index_only(entries)
            entries = []
    if entries:
        target.add_index_only(entries)


def route_latency(source_path: Path, work: Path, questions: Sequence[str], routers: Sequence[str], collection: str,
                  sizes: Sequence[int] = SIZES, log: Callable[[str], None] = print) -> dict:
    """p50/p90 ms of each router over `questions` among each of `sizes` memories; cached in work/scale.json."""
    from loramem.api import Memory
    from loramem.store import MemoryStore

    done_path = work / "scale.json"
    done = json.loads(done_path.read_text()) if done_path.exists() else {}
    source = MemoryStore(source_path)
    asked = [questions[i * len(questions) // QUESTIONS] for i in range(min(QUESTIONS, len(questions)))]
    for n in sizes:
        if str(n) in done:
            continue
        store = work / f"scale-{n}"
        t = time.perf_counter()
        fill_catalogue(source, store, n, collection)
        mem = Memory(store=store, progress=False)
        result = {"build_s": round(time.perf_counter() - t, 1)}
        for router in routers:
            mem.route(asked[0], router, 3, collection)  # the index is built once per store generation
            ms = []
            for q in asked:
                tick = time.perf_counter()
                mem.route(q, router, 3, collection)
                ms.append((time.perf_counter() - tick) * 1000)
            result[router] = {"p50_ms": round(statistics.median(ms), 2), "p90_ms": round(float(np.quantile(ms, 0.9)), 2)}
            log(f"{n:,} memories, {router}: p50 {result[router]['p50_ms']:.1f} ms, p90 {result[router]['p90_ms']:.1f} ms")
        done[str(n)] = result
        done_path.write_text(json.dumps(done, indent=2))
    return done
