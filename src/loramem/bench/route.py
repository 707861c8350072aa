"""`loramem bench route`: routing over a large catalogue — how long the store takes to open and a
top-k query takes to answer.

The catalogue is real (SQLite rows and stored embeddings, as writes leave them); the memories'
adapters are not trained (routing never reads them) and their embeddings are random unit vectors
(latency does not depend on what they say), so 100,000 memories are built in seconds. The
query is embedded by the real MiniLM model, as in `ask --route`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from loramem.routing.index import PASSAGE, MemoryIndex
from loramem.store import MemoryRecord, MemoryStore

ROUTE_TARGETS = {"route_p50_ms": (20.0, False), "open_s": (1.0, False)}


def build_catalogue(path: Path, n: int, dim: int = 384, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n):
        record = MemoryRecord(
            name=f"memory-{i:06d}", folder=f"adapters/synthetic-{i}", source_hash="", sources=[f"doc-{i}.md"],
            base_model="synthetic", base_fingerprint="synthetic", rank=8, formats=["qa"], examples=10, tokens=300,
            parameters=4_884_480, recall=1.0, created="2026-01-01T00:00:00+00:00", document=f"synthetic memory {i}",
        )
        v = rng.standard_normal((1, dim)).astype(np.float32)
        entries.append((record, MemoryIndex([PASSAGE], [record.document], v / np.linalg.norm(v))))
    MemoryStore(path).add_index_only(entries)


def run_route_bench(n: int = 100_000, top_k: int = 5, queries: int = 200, log=print) -> dict:
    from loramem.api import Memory
    from loramem.retrieval import embed

    embed(["warm up the embedding model"])
    with tempfile.TemporaryDirectory(prefix="loramem-route-") as tmp:
        path = Path(tmp) / "store"
        t = time.perf_counter()
        build_catalogue(path, n)
        built = time.perf_counter() - t
        log(f"built a catalogue of {n:,} memories in {built:.1f} s")
        t = time.perf_counter()
        mem = Memory(store=path, progress=False)
        count = mem.store.count()
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        mem.route("first query loads the index", "embedding", top_k)
        first_s = time.perf_counter() - t
        latencies = []
        for i in range(queries):
            t = time.perf_counter()
            mem.route(f"What is the phone number of person {i}?", "embedding", top_k)
            latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {"memories": count, "top_k": top_k, "router": "embedding", "build_s": built, "open_s": open_s,
            "first_query_s": first_s, "route_p50_ms": statistics.median(latencies),
            "route_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "queries": queries}
