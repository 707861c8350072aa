"""`loramem bench routers`: does a router find the memory that holds the answer?

Each partition file (say the 16 sectors of the seed paper's 128K PhoneBook) becomes one memory
of a fresh catalogue, indexed exactly as `write` indexes it — the routing embedding of its
records, its text for BM25 — but with no adapter trained: routers never read adapters, so
router accuracy takes minutes where the writes would take hours. Each question of each
partition (or an even sample of them) is routed; a hit at k is its own partition among the
router's top k. End-to-end accuracy needs the trained memories: `write` the partitions into a
collection and `ask --route auto --collection C`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from loramem.errors import LoramemError
from loramem.routing import ROUTERS, first_stage_routers


def index_partitions(store_path: Path, files: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """One index-only memory per file; returns each memory's (question, answer) records."""
    from loramem.routing.index import memory_index
    from loramem.store import MemoryRecord, MemoryStore
    from loramem.supervision.sources import read_source

    entries, records = [], {}
    for path in files:
        source = read_source(path)
        if not source.records:
            raise LoramemError(f"{path}: router accuracy needs question-answer records (.csv or .jsonl)")
        name = path.stem
        if name in records:
            raise LoramemError(f"two partitions are named {name!r}; give the files distinct names")
        record = MemoryRecord(
            name=name, folder=f"adapters/index-only-{name}", source_hash=source.digest, sources=[path.name],
            base_model="index-only", base_fingerprint="index-only", rank=0, formats=["record"],
            examples=len(source.records), tokens=0, parameters=0, recall=0.0, created="", document=source.text,
        )
        entries.append((record, memory_index([source])))
        records[name] = [(r.prompt, r.target) for r in source.records]
    MemoryStore(store_path).add_index_only(entries)
    return records


def run_router_accuracy(files: list[Path], routers: Sequence[str] | None = None, ks=(1, 3),
                        per_partition: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Hit rate at each k and p50 latency per router (default: every registered one), over the partitions' questions."""
    from tqdm.auto import tqdm

    from loramem.api import Memory
    from loramem.bench.datasets.base import spread

    routers = first_stage_routers() if routers is None else list(routers)
    for router in routers:
        if ROUTERS.get(router).needs_adapters:  # an unknown name fails here, with the valid ones
            raise LoramemError(f"router {router!r} reads the memories' adapters and this study indexes "
                               f"partitions without training them; pick from {', '.join(first_stage_routers())}")
    if len(files) < 2:
        raise LoramemError("router accuracy needs at least two partitions")
    if max(ks) > len(files):
        raise LoramemError(f"top-k {max(ks)} exceeds the {len(files)} partitions")
    with tempfile.TemporaryDirectory(prefix="loramem-routers-") as tmp:
        t = time.perf_counter()
        records = index_partitions(Path(tmp) / "store", [Path(f) for f in files])
        log(f"indexed {len(records)} partitions ({sum(map(len, records.values())):,} records) "
            f"in {time.perf_counter() - t:.0f} s")
        questions = [(q, name) for name, rs in records.items() for q, _ in spread(rs, per_partition)]
        mem = Memory(store=Path(tmp) / "store", progress=False)
        results: dict = {"partitions": len(records), "questions": len(questions), "routers": {}}
        for router in routers:
            hits = {k: 0 for k in ks}
            latencies = []
            mem.route(questions[0][0], router, max(ks))  # builds the index
            for question, gold in tqdm(questions, desc=router, unit="q", leave=False):
                t = time.perf_counter()
                names = [r.name for r in mem.route(question, router, max(ks))]
                latencies.append((time.perf_counter() - t) * 1000)
                for k in ks:
                    hits[k] += gold in names[:k]
            results["routers"][router] = {**{f"hit@{k}": hits[k] / len(questions) for k in ks},
                                          "p50_ms": statistics.median(latencies)}
            log(f"{router}: " + ", ".join(f"hit@{k} {hits[k] / len(questions):.1%}" for k in ks))
    return results
