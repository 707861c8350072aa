"""`loramem datasheet` as one call: measure a base model's capacity per rank, write the datasheet
folder, and keep a copy where `write --rank auto` finds it (loramem.capacity.load_saved)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loramem.bench import TAU
from loramem.capacity import saved_path
from loramem.training import TrainConfig


@dataclass(frozen=True)
class Sweep:
    """Which ranks are probed, the entry counts tried for each, and the training budget."""

    ranks: tuple[int, ...]
    start: int  # the first entry count tried (doubled until recall falls below tau)
    max_entries: int
    epochs: int | None = None  # None: TrainConfig's


FULL = Sweep(ranks=(1, 2, 4, 8, 16, 32), start=8, max_entries=1024)
QUICK = Sweep(ranks=(1, 4), start=16, max_entries=64, epochs=25)  # under 20 minutes on 2 cores


def save_datasheet(sheet: dict, fingerprint: str) -> Path:
    """Keep `sheet` for the base model with this fingerprint; returns where (see saved_path)."""
    saved = saved_path(fingerprint)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(sheet, indent=2))
    return saved


def run_datasheet(model: str | None, device: str | None, out: Path, ranks: list[int] | None = None,
                  quick: bool = False, tau: float = TAU, log: Callable[[str], None] = print,
                  batch_memories: int = 1) -> tuple[Path, Path]:
    """Measure, write `out/datasheet.md` (+ json, plot) and the saved copy; returns both paths.
    `batch_memories` > 1 trains the ranks' probes together (`loramem.bench.datasheet.measure`)."""
    from loramem.bench.datasheet import measure, summarize, write_datasheet  # torch: not for `datasheet --help`
    from loramem.models import load_base

    sweep = QUICK if quick else FULL
    base = load_base(model, device)
    config = TrainConfig() if sweep.epochs is None else TrainConfig(epochs=sweep.epochs)
    probes = measure(base, list(ranks or sweep.ranks), tau=tau, start=sweep.start, max_entries=sweep.max_entries,
                     config=config, log=log, batch_memories=batch_memories)
    sheet = summarize(probes, tau, base.name)
    return write_datasheet(sheet, out), save_datasheet(sheet, base.fingerprint)
