"""`loramem bench corpus`: a corpus of memories written one by one and batched, in one process.

The 16 sectors of the seed paper's 128K PhoneBook (`pb_cf/phonebook_qa_128K_sector_NN.csv`),
the first `entries` records of each, are written as one memory per sector twice, into two
stores: one memory after another (`batch_memories=1`) and `batch_memories` at a time, both
through `loramem.write_many` (what `write --collection` runs). Reported per way: memories per
hour (the whole write: supervision, training, read-back, save, catalogue), supervised tokens/s
(target tokens trained on, every epoch, per second of training steps), processed tokens/s, MFU
(as `bench perf` counts it: FLOPs of loramem's one-memory step per token, over the fp32 matmul
peak, and over the training dtype's peak where that is bf16) and each memory's read-back recall.
A throwaway write first loads what every write needs (the training copy, the embedding model),
so neither way pays for it.

The default, 4 entries a sector, finishes both ways in about 5 minutes on 2 cores (16 memories of
~13 epochs each); a fact table the size `write` usually gets (`--entries 24` or more) takes longer
but gives each memory's step more tokens, so batching has less per-step overhead to save there.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from loramem.bench import hardware
from loramem.bench.datasets.base import data_dir
from loramem.bench.perf import flops_per_token, matmul_peak_flops
from loramem.bench.rows import qa_rows
from loramem.errors import LoramemError
from loramem.models import load_base
from loramem.supervision.sources import read_source
from loramem.training import TrainConfig, TrainResult
from loramem.training.config import BENCH_BATCH_MEMORIES
from loramem.training.precision import training_dtype, training_model
from loramem.write_many import write_many

CORPUS_TARGETS = {"speedup": (1.5, True), "mfu": (0.85, True)}  # issue 25, on 2 cores
SECTORS = "phonebook_qa_128K_sector_{:02d}.csv"


def sector_files(data: str | Path | None = None, partitions: int = 16) -> list[Path]:
    """The first `partitions` sector files of the 128K PhoneBook in the seed paper's data folder."""
    folder = data_dir(data) / "pb_cf"
    files = [folder / SECTORS.format(i) for i in range(partitions)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise LoramemError(f"{folder} lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: "
                           "the 128K PhoneBook sectors of the seed paper's data (see --data)")
    return files


def _way(mem, writes: list[dict], batch_memories: int) -> dict:
    """Write `writes` into `mem`'s store `batch_memories` at a time; the way's numbers."""
    trained: dict[int, TrainResult] = {}
    tick = time.perf_counter()
    written = write_many(mem, writes, batch_memories, on_trained=lambda i, r: trained.__setitem__(i, r))
    seconds = time.perf_counter() - tick
    runs = [trained[i] for i in range(len(writes))]
    step_seconds = sum(r.train_seconds for r in runs)  # batched: each memory's share of the steps it was in
    supervised = sum(r.target_tokens * r.epochs for r in runs)  # every epoch runs over every target once
    return {"seconds": seconds, "memories_per_hour": len(writes) * 3600 / seconds,
            "supervised_tokens_per_s": supervised / step_seconds,
            "processed_tokens_per_s": sum(r.processed_tokens for r in runs) / step_seconds,
            "recalls": [w.record.recall for w in written], "epochs": [w.epochs for w in written]}


def run_corpus(data: str | Path | None = None, partitions: int = 16, entries: int = 4,
               batch_memories: int = BENCH_BATCH_MEMORIES, model: str | None = None, device: str | None = None,
               config: TrainConfig | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Write the corpus both ways and return the results (see the module docstring)."""
    from loramem.api import Memory

    if entries < 1 or partitions < 1 or batch_memories < 1:
        raise LoramemError("entries, partitions and batch memories must be at least 1")
    files = sector_files(data, partitions)
    parts = [read_source(f).records[:entries] for f in files]
    base = load_base(model, device)
    config = config or TrainConfig()
    dtype = training_dtype(config.precision, base)
    results: dict = {"model": base.name, "device": str(base.device), "hardware": hardware(base.device),
                     "threads": torch.get_num_threads(),
                     "precision": str(dtype).replace("torch.", ""), "rank": config.rank, "partitions": partitions,
                     "entries": entries, "batch_memories": batch_memories}
    with tempfile.TemporaryDirectory(prefix="loramem-corpus-") as tmp:
        tmp = Path(tmp)
        training_model(base, dtype)
        warm = Memory(store=tmp / "warm-up", base=base, progress=False)
        warm.write(records=qa_rows(parts[0][:1]), name="warm-up", config=replace(config, epochs=1))
        ways = {}
        for key, n in (("sequential", 1), ("batched", batch_memories)):
            log(f"writing {partitions} memories of {entries} entries {'one by one' if n == 1 else f'{n} at a time'} ...")
            mem = Memory(store=tmp / key, base=base, progress=progress)
            writes = [dict(records=qa_rows(p), name=f"sector-{i:02d}", collection="corpus", config=config)
                      for i, p in enumerate(parts)]
            ways[key] = _way(mem, writes, n)
        flops = flops_per_token(base, parts[0], config)
    peak = matmul_peak_flops(torch.float32, base.device)
    peak_dtype = matmul_peak_flops(dtype, base.device) if dtype == torch.bfloat16 else None
    for key, way in ways.items():
        suffix = "" if key == "batched" else "_sequential"
        for name in ("memories_per_hour", "seconds", "supervised_tokens_per_s", "processed_tokens_per_s"):
            results[f"{name}{suffix}"] = way[name]
        results[f"mfu{suffix}"] = flops * way["processed_tokens_per_s"] / peak
        if peak_dtype:
            results[f"mfu_vs_training_dtype_peak{suffix}"] = flops * way["processed_tokens_per_s"] / peak_dtype
        results[f"recall_min{suffix}"] = min(way["recalls"])
        results[f"recall_mean{suffix}"] = sum(way["recalls"]) / len(way["recalls"])
    results["speedup"] = results["memories_per_hour"] / results["memories_per_hour_sequential"]
    results["step_speedup"] = results["processed_tokens_per_s"] / results["processed_tokens_per_s_sequential"]
    results["matmul_peak_flops"] = peak
    results["train_flops_per_token"] = flops
    results["recalls"] = ways["batched"]["recalls"]
    results["recalls_sequential"] = ways["sequential"]["recalls"]
    results["epochs"] = ways["batched"]["epochs"]
    results["epochs_sequential"] = ways["sequential"]["epochs"]
    return results
