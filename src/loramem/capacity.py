"""The capacity model `write --rank auto` and `--split auto` read: how many facts a rank stores on
this base model, from its saved datasheet (`loramem datasheet` measures and saves one) or, when
none was measured, built-in defaults."""

from __future__ import annotations

import json
import math
from pathlib import Path

from loramem.errors import LoramemError

# Used when no datasheet was measured: entries a rank stores on a ~100M-parameter model
# (conservative, from this project's runs on SmolLM2-135M).
DEFAULT_CAPACITY = {1: 16, 2: 32, 4: 64, 8: 128, 16: 256, 32: 512}


def recommend(sheet: dict | None, entries: int) -> tuple[int, int]:
    """(rank, modules) for `entries` facts: the smallest rank that stores them with room to spare,
    else the largest measured rank, split over as many modules as needed."""
    capacity = ({r["rank"]: r["t_max_entries"] for r in sheet["ranks"] if r["t_max_entries"]}
                if sheet else dict(DEFAULT_CAPACITY))
    if not capacity:
        raise LoramemError("the datasheet stores nothing at any rank; measure it again with more epochs")
    for rank in sorted(capacity):
        if capacity[rank] >= entries:
            return rank, 1
    top = max(capacity)
    return top, math.ceil(entries / capacity[top])


def saved_path(fingerprint: str) -> Path:
    """Where the datasheet of the base model with this fingerprint is kept for `write --rank auto`."""
    from loramem.models.default import cache_root

    return cache_root() / "datasheets" / f"{fingerprint}.json"


def load_saved(fingerprint: str) -> dict | None:
    try:
        return json.loads(saved_path(fingerprint).read_text())
    except (OSError, ValueError):
        return None
