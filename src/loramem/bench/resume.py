"""Resumable studies that cannot resume the wrong thing.

A study appends rows as its work finishes and, rerun into the same folder, skips the work done.
That is right only when the rerun asks for the same thing: `bench run` with other epochs used to
skip every run while its `config.yaml` claimed the new epochs, and `bench partitions` reused
memories written with another rank. So a study saves the settings its results depend on in its
folder on the first run (`claim_folder`) and refuses a later run whose settings differ, naming
each difference; a run is keyed on all of its own settings (`settings_key`); and a memory reused
by name is checked against the settings it should have been written with (`check_reused`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from loramem.errors import LoramemError
from loramem.training.config import FIELDS_ADDED

if TYPE_CHECKING:
    from loramem.store import MemoryRecord

SETTINGS = "settings.json"
_SECRET = "api_key"  # never saved beside results (a judge's or a generator's)


def _public(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _public(v) for k, v in value.items() if k != _SECRET}
    return value


def plain(settings: Mapping) -> dict:
    """`settings` as they read back from JSON (tuples as lists, paths as text), API keys left out."""
    return json.loads(json.dumps(_public(settings), sort_keys=True, default=str))


def settings_key(settings: Mapping) -> str:
    """A short hash of `settings`: the same for equal settings in any key order."""
    return hashlib.sha256(json.dumps(plain(settings), sort_keys=True).encode()).hexdigest()[:16]


def model_name(spec: str | None) -> str:
    """The name `load_base` gives the model `spec` names (None and "default": the embedded model)."""
    from loramem.models import DEFAULT_MODEL

    if spec in (None, "", "default", DEFAULT_MODEL):
        return DEFAULT_MODEL
    return str(Path(spec).resolve()) if Path(spec).exists() else spec


def differences(stored: object, wanted: object, where: str = "") -> list[str]:
    """`name: stored -> wanted` for each setting that differs; nested names are joined by dots."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for k in sorted(set(stored) | set(wanted), key=str):
            name = f"{where}.{k}" if where else str(k)
            if k not in stored:
                out.append(f"{name}: (not set) -> {wanted[k]!r}")
            elif k not in wanted:
                out.append(f"{name}: {stored[k]!r} -> (not set)")
            else:
                out += differences(stored[k], wanted[k], name)
        return out
    return [] if stored == wanted else [f"{where}: {stored!r} -> {wanted!r}"]


def claim_folder(out: Path, settings: Mapping, results: Sequence[Path] = (), filename: str = SETTINGS) -> dict:
    """Save `settings` as `out/filename`, or check that the settings saved there are the same.

    Refused: a folder whose saved settings differ (its results were made with those), and one
    that holds any of `results` but no saved settings (an older loramem wrote it without them).
    Returns the settings as saved.
    """
    wanted = plain(settings)
    path = out / filename
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            raise LoramemError(f"{path} is not valid JSON; restore it, or give another output folder") from None
        diff = differences(stored, wanted)
        if diff:
            raise LoramemError(f"{out} holds results made with other settings (saved -> asked: {'; '.join(diff)}); "
                               "rerun with the saved settings to resume, or give another output folder")
        return wanted
    found = [p.name for p in results if p.exists() and p.stat().st_size]
    if found:
        raise LoramemError(f"{out} holds results ({', '.join(found)}) but no {filename} with the settings they were "
                           "made with (an older loramem wrote them), so they cannot be resumed safely; "
                           "give another output folder")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n")
    return wanted


def check_reused(record: MemoryRecord, wanted: Mapping, where: Path | str = "") -> None:
    """Refuse to reuse the stored memory `record` unless it was written with `wanted`: catalogue
    fields (`rank`, `examples`, ...) and the resolved training settings it keeps in `config`."""
    written = {**FIELDS_ADDED, **{k: v for k, v in vars(record).items() if k not in ("config", "document")},
               **record.config}
    have = plain({k: written.get(k, "(not set)") for k in wanted})
    diff = differences(have, plain(wanted))
    if diff:
        raise LoramemError(f"memory {record.name!r}{f' in {where}' if where else ''} was written with other settings "
                           f"(stored -> asked: {'; '.join(diff)}); give another output folder")
