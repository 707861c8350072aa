"""Benchmark results as JSONL rows: appended as work finishes, read back to resume and report."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loramem.supervision.examples import Example


def read_jsonl(path: Path) -> list[dict]:
    """Every row of `path`; none when it does not exist yet."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_results(out: Path) -> tuple[list[dict], dict]:
    """A study folder's results.jsonl rows and its settings.json; refused while it has no row."""
    import json

    from loramem.errors import LoramemError

    rows = read_jsonl(out / "results.jsonl")
    if not rows:
        raise LoramemError(f"{out}: no results.jsonl rows yet")
    return rows, json.loads((out / "settings.json").read_text())


def append_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def qa_rows(examples: Iterable[Example]) -> list[dict]:
    """Examples as the question-answer dicts `Memory.write(records=...)` takes."""
    return [{"question": e.prompt, "answer": e.target} for e in examples]
