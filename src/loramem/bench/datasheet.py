"""`loramem datasheet`: the capacity of this base model's LoRA memory, measured like a storage chip.

For each rank, PhoneBooks of doubling size are written (a budget of epochs, but at least MIN_STEPS
optimizer steps, early stop at the target) until read-back recall falls below tau; the largest
size at or above tau is the rank's capacity. Read-back recall is exact greedy-decoding accuracy
on the stored questions (see training/readback.py), so no generation loop is needed. An entry
holds log2(10^10) bits: ten random digits. What a write reads back from a saved datasheet is the
library's (`loramem.capacity`).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from loramem.bench import TAU
from loramem.bench.datasets.phonebook import phonebook
from loramem.capacity import recommend
from loramem.training import TrainConfig, train_memory

BITS_PER_ENTRY = math.log2(10**10)
MIN_STEPS = 100  # optimizer steps every probe may take, however small (it still stops at tau)


@dataclass
class Probe:
    rank: int
    entries: int
    tokens: int
    recall: float
    epochs: int
    seconds: float
    parameters: int


def entry_tokens(tokenizer, entries) -> int:
    """Tokens of the entries as the paper counts them: `Question: ... Answer: ...` lines."""
    return sum(len(tokenizer(f"Question: {e.prompt} Answer: {e.target}", add_special_tokens=False)["input_ids"])
               for e in entries)


@dataclass
class _Search:
    """One rank's sizes: doubling from `first` while stored; when `first` already fails, halving until
    one is stored (or one entry fails)."""

    first: int
    max_entries: int
    n: int = 0
    down: bool = False

    def __post_init__(self) -> None:
        self.n = self.first

    def next(self, stored: bool) -> int | None:
        """The next size after the probe of `n` (stored or not); None when the search is over."""
        if stored and not self.down:
            self.n *= 2
        elif not stored and (self.down or self.n == self.first):
            self.down, self.n = True, self.n // 2
        else:
            return None
        return self.n if 1 <= self.n <= self.max_entries else None


def _probe_config(config: TrainConfig, rank: int, n: int, tau: float, seed: int, min_steps: int) -> TrainConfig:
    # An epoch bound alone gives a small probe few optimizer steps (8 entries, batch 8, 25 epochs:
    # 25 steps), which reads as low capacity; every size gets min_steps.
    epochs = max(config.epochs, math.ceil(min_steps * config.batch_size / n))
    return replace(config, rank=rank, target_recall=tau, seed=seed, epochs=epochs)


def measure(base, ranks: list[int], tau: float = TAU, start: int = 8, max_entries: int = 512,
            config: TrainConfig | None = None, seed: int = 0, min_steps: int = MIN_STEPS,
            log: Callable[[str], None] = print, batch_memories: int = 1) -> list[Probe]:
    """Probe each rank at doubling PhoneBook sizes until recall drops below `tau`.

    One probe at a time (`batch_memories` 1), ranks go in increasing order, and each starts at the
    largest size the rank before it stored (a larger adapter holds at least as much), so no small
    size is trained twice. When a rank's first size already fails, the sizes halve until one is
    stored (or one entry fails), so a small rank still gets its capacity rather than zero.

    With `batch_memories` > 1 every rank searches at once, its probes trained together with the
    other ranks' (`train_memories`: each memory as if alone, one base model forward for all), up to
    `batch_memories` at a time. Rank r then starts at `start` x r / min(ranks) instead of the rank
    before it's capacity (capacity grows with rank, as DEFAULT_CAPACITY has it); a probe's `seconds`
    runs from its joining the batch to its save, so they overlap. On the 2-core EPYC (SmolLM2-135M,
    ranks 1, 2, 4, start 8, 32 entries at most, 25 epochs) one by one took 362 s for 5 probes and
    together 390 s for 6, the probes both ran reading back the same in the same epochs: on a CPU a
    batch of three costs nearly three alone, so this is for a GPU.
    """
    config = config or TrainConfig()
    if batch_memories > 1:
        return _measure_together(base, sorted(ranks), tau, start, max_entries, config, seed, min_steps, log,
                                 batch_memories)
    probes: list[Probe] = []
    floor = 0
    with tempfile.TemporaryDirectory(prefix="loramem-datasheet-") as tmp:
        for rank in sorted(ranks):
            search = _Search(min(max(start, floor), max_entries), max_entries)
            n: int | None = search.n
            while n is not None:
                entries = phonebook(n, seed=seed + n)
                t = time.perf_counter()
                result = train_memory(base, entries, _probe_config(config, rank, n, tau, seed, min_steps),
                                      Path(tmp) / f"r{rank}-{n}", progress=False)
                probe = Probe(rank, n, entry_tokens(base.tokenizer, entries), result.recall, result.epochs,
                              time.perf_counter() - t, result.parameters)
                probes.append(probe)
                _log_probe(log, probe)
                n = search.next(probe.recall >= tau)
            floor = max([p.entries for p in probes if p.rank == rank and p.recall >= tau], default=floor)
    return probes


def _log_probe(log: Callable[[str], None], probe: Probe) -> None:
    log(f"rank {probe.rank}: {probe.entries} entries ({probe.tokens} tokens) → recall {probe.recall:.0%} "
        f"in {probe.epochs} epochs, {probe.seconds:.0f} s")


def _measure_together(base, ranks: list[int], tau: float, start: int, max_entries: int, config: TrainConfig,
                      seed: int, min_steps: int, log: Callable[[str], None], batch_memories: int) -> list[Probe]:
    from loramem.training import MemoryJob, train_memories

    probes: list[Probe] = []
    searches = {r: _Search(max(1, min(start * r // ranks[0], max_entries)), max_entries) for r in ranks}
    probed: list[tuple[int, list]] = []  # (rank, entries) of each job, in job order
    with tempfile.TemporaryDirectory(prefix="loramem-datasheet-") as tmp:

        def job(rank: int, n: int) -> MemoryJob:
            entries = phonebook(n, seed=seed + n)
            probed.append((rank, entries))
            return MemoryJob(entries, _probe_config(config, rank, n, tau, seed, min_steps), Path(tmp) / f"r{rank}-{n}")

        def done(index: int, result) -> list[MemoryJob]:
            rank, entries = probed[index]
            probe = Probe(rank, len(entries), entry_tokens(base.tokenizer, entries), result.recall, result.epochs,
                          result.seconds, result.parameters)
            probes.append(probe)
            _log_probe(log, probe)
            n = searches[rank].next(probe.recall >= tau)
            return [job(rank, n)] if n is not None else []

        train_memories(base, [job(r, searches[r].n) for r in ranks], batch_memories, progress=False, on_done=done)
    return sorted(probes, key=lambda p: p.rank)  # each rank's probes in the order it took them


def summarize(probes: list[Probe], tau: float, model: str) -> dict:
    ranks = []
    for rank in sorted({p.rank for p in probes}):
        ps = sorted((p for p in probes if p.rank == rank), key=lambda p: p.entries)
        stored = [p for p in ps if p.recall >= tau]
        failed = next((p for p in ps if p.recall < tau), None)
        best = stored[-1] if stored else None
        params = ps[0].parameters
        t_max = best.tokens if best else 0
        ranks.append({
            "rank": rank, "parameters": params,
            "t_max_entries": best.entries if best else 0, "t_max_tokens": t_max,
            "efficiency_tokens_per_param": t_max / params,
            "bits_per_param": (best.entries if best else 0) * BITS_PER_ENTRY / params,
            "saturation_entries": failed.entries if failed else None,  # first size below tau (None: not reached)
            "recall_at_saturation": failed.recall if failed else None,
        })
    return {"model": model, "tau": tau, "bits_per_entry": BITS_PER_ENTRY, "ranks": ranks,
            "probes": [p.__dict__ for p in probes]}


def write_datasheet(sheet: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "datasheet.json").write_text(json.dumps(sheet, indent=2))
    fig, ax = plt.subplots(figsize=(6, 4))
    for rank in sorted({p["rank"] for p in sheet["probes"]}):
        ps = sorted((p for p in sheet["probes"] if p["rank"] == rank), key=lambda p: p["entries"])
        ax.plot([p["tokens"] for p in ps], [p["recall"] for p in ps], marker="o", label=f"rank {rank}")
    ax.axhline(sheet["tau"], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="PhoneBook tokens written", ylabel="read-back recall", title="capacity by rank", ylim=(0, 1.05))
    ax.set_xscale("log", base=2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "capacity.png", dpi=120)
    plt.close(fig)
    rows = ["| rank | parameters | t_max (entries) | t_max (tokens) | tokens / param | bits / param | saturates at |",
            "|---|---|---|---|---|---|---|"]
    for r in sheet["ranks"]:
        rows.append(f"| {r['rank']} | {r['parameters']:,} | {r['t_max_entries']} | {r['t_max_tokens']} | "
                    f"{r['efficiency_tokens_per_param']:.2e} | {r['bits_per_param']:.2e} | "
                    f"{r['saturation_entries'] or 'not reached'} |")
    stores = any(r["t_max_entries"] for r in sheet["ranks"])
    examples = [(n, *recommend(sheet, n)) for n in (50, 500, 5000)] if stores else []
    md = [f"# LoRA memory datasheet: {sheet['model']}\n",
          f"Capacity = the largest PhoneBook (doubling sizes) read back at >= {sheet['tau']:.0%} "
          f"(exact greedy answers); an entry carries log2(10^10) = {BITS_PER_ENTRY:.1f} bits.\n",
          "\n".join(rows) + "\n", "![capacity by rank](capacity.png)\n", "## Recommended rank\n",
          "\n".join(f"* {n} facts: rank {r}" + (f", split over {m} memories" if m > 1 else "") for n, r, m in examples)
          or "No rank stored the smallest PhoneBook at tau: measure again with more epochs."]
    (out / "datasheet.md").write_text("\n".join(md) + "\n")
    return out / "datasheet.md"
