"""The supervision a version was trained on, kept in its adapter folder (`supervision.jsonl`),
with the texts of the documents it holds (`documents.json`, file name → text).

Each line is one example with the file it came from (`origin`), so an update can tell which
examples a superseded record or a revised document brought, and replay the rest. Examples of
kind `forget` stand for removed knowledge: the base model's own answer to a removed question,
which continued training keeps enforcing so the removed answer stays gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from loramem.errors import LoramemError
from loramem.store.versions import SUPERVISION_FILE
from loramem.supervision.examples import Example

RECORD = "record"  # a question-answer row of a fact table, trained as it is
FORGET = "forget"
ANCHOR = "anchor"  # a general prompt with the base model's own answer (training/anchors.py)
DOCUMENTS_FILE = "documents.json"


def is_fact_table(kinds) -> bool:
    """Whether example kinds are a fact table's: every one a record, anchors and forget targets aside."""
    return set(kinds) - {ANCHOR, FORGET} == {RECORD}


@dataclass(frozen=True)
class Stored:
    """One stored example and the input file it came from."""

    example: Example
    origin: str


def save_supervision(folder: Path, stored: list[Stored], documents: dict[str, str]) -> None:
    with (folder / SUPERVISION_FILE).open("w", encoding="utf-8") as f:
        for s in stored:
            f.write(json.dumps({**s.example.to_dict(), "origin": s.origin}, ensure_ascii=False) + "\n")
    (folder / DOCUMENTS_FILE).write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")


def load_documents(folder: Path) -> dict[str, str]:
    """The documents' texts a version holds, by file name (records are in its supervision)."""
    try:
        return json.loads((folder / DOCUMENTS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def has_supervision(folder: Path) -> bool:
    return (folder / SUPERVISION_FILE).is_file()


def load_supervision(folder: Path, memory: str = "") -> list[Stored]:
    path = folder / SUPERVISION_FILE
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Stored(Example(**{k: v for k, v in row.items() if k != "origin"}), row.get("origin", ""))
                for row in rows]
    except FileNotFoundError:
        raise LoramemError(f"memory {memory!r} was written before versions kept their supervision; rewrite it "
                           "once with write --replace, then update it") from None
    except (ValueError, TypeError) as e:
        raise LoramemError(f"{path}: damaged supervision file ({e}); roll back or rewrite the memory") from None
