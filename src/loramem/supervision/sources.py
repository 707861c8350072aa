"""Reading the user's files: documents (.txt/.md) and question–answer records (.jsonl/.csv).

Every check here runs before any model is loaded, so bad input fails in a second with a
message that names the file and says what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loramem.errors import LoramemError
from loramem.supervision.examples import Example
from loramem.supervision.limits import InputLimits
from loramem.supervision.stored import RECORD

_QA_TEXT = re.compile(r"\s*Question:\s*(.+?)\s*Answer:\s*(.+?)\s*$", re.S)
DOCUMENT_SUFFIXES = {".txt", ".md"}
RECORD_SUFFIXES = {".jsonl", ".csv"}


@dataclass
class Source:
    """One input file: a document, or a table of explicit facts."""

    path: Path
    text: str
    digest: str  # sha256 of the file's bytes
    records: list[Example] = field(default_factory=list)

    @property
    def is_records(self) -> bool:
        return bool(self.records)

    @property
    def title(self) -> str:
        """A document's first Markdown heading, else its file name."""
        if not self.is_records:
            first = self.text.lstrip().split("\n", 1)[0]
            if first.startswith("#") and first.lstrip("# ").strip():
                return first.lstrip("# ").strip()
        return self.path.stem.replace("_", " ").replace("-", " ")


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text and the sha256 of its bytes."""
    if not path.exists():
        raise LoramemError(f"{path}: no such file")
    if not path.is_file():
        raise LoramemError(f"{path}: not a file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise LoramemError(f"{path}: looks binary (contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoramemError(f"{path}: not valid UTF-8 (byte {e.start}); re-save it as UTF-8") from None
    if not text or text.isspace():  # not strip(): that copies a 50 MB file to find it is not empty
        raise LoramemError(f"{path}: file is empty")
    return text, hashlib.sha256(data).hexdigest()


def _text(value: object) -> str:
    """A field's text: a string as it is, any other JSON value (number, list, object) as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def _record(path: Path, where: str, row: object, limits: InputLimits) -> Example:
    if not isinstance(row, dict):
        raise LoramemError(f"{path}:{where}: expected an object with 'question' and 'answer' fields")
    try:
        question, answer = _text(row.get("question")), _text(row.get("answer"))
    except (RecursionError, ValueError):  # nested past Python's recursion limit, or circular
        raise LoramemError(f"{path}:{where}: a field is nested too deeply (or holds itself) to store; give it as text") from None
    missing = [k for k, v in (("question", question), ("answer", answer)) if not v]
    if missing:
        raise LoramemError(f"{path}:{where}: missing or empty field(s) {', '.join(missing)}")
    limits.check_record_chars(f"{path}:{where}", question, answer)
    return Example(prompt=question, target=answer, kind=RECORD)


def _read_jsonl(path: Path, text: str, limits: InputLimits) -> list[Example]:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LoramemError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise LoramemError(f"{path}:{n}: JSON nested too deeply to read; a record is an object with "
                               "'question' and 'answer' fields") from None
        records.append(_record(path, str(n), row, limits))
    return records


def _read_csv(path: Path, text: str, limits: InputLimits) -> list[Example]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_records(path, reader, limits)
    except csv.Error as e:
        fix = (f"a CSV field holds at most {csv.field_size_limit():,} characters: shorten it"
               if "field limit" in str(e) else "check its quoting")
        line = reader.reader.line_num  # DictReader's own line_num is that of the last row it returned
        raise LoramemError(f"{path}:{line}: cannot read this CSV row ({e}); {fix}") from None


def _csv_records(path: Path, reader: csv.DictReader, limits: InputLimits) -> list[Example]:
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    rows = ({(k or "").strip().lower(): v for k, v in row.items()} for row in reader)
    if "question" in fields and "answer" in fields:
        return [_record(path, str(n), row, limits) for n, row in enumerate(rows, 2)]
    if "text" in fields:  # the seed paper's files: one `text` column, "Question: ... Answer: ..."
        out = []
        for n, row in enumerate(rows, 2):
            m = _QA_TEXT.match(row.get("text") or "")
            if not m:
                raise LoramemError(f"{path}:{n}: expected 'Question: ... Answer: ...' in the text column")
            out.append(_record(path, str(n), {"question": m.group(1), "answer": m.group(2)}, limits))
        return out
    raise LoramemError(
        f"{path}: a CSV needs 'question' and 'answer' columns, or a 'text' column of 'Question: ... Answer: ...' "
        f"rows (found: {', '.join(fields) or 'none'})"
    )


def read_source(path: str | Path, limits: InputLimits | None = None) -> Source:
    """One file, checked; `limits` (default: InputLimits()) bounds what a record and a document may hold."""
    path = Path(path)
    limits = limits or InputLimits()
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES | RECORD_SUFFIXES:
        valid = ", ".join(sorted(DOCUMENT_SUFFIXES | RECORD_SUFFIXES))
        raise LoramemError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {valid}")
    text, digest = _read_text(path)
    if suffix in DOCUMENT_SUFFIXES:
        limits.check_document_chars(str(path), text)
        return Source(path=path, text=text, digest=digest)
    records = _read_jsonl(path, text, limits) if suffix == ".jsonl" else _read_csv(path, text, limits)
    return _records_source(path, records, digest)


def _records_source(path: Path, records: list[Example], digest: str) -> Source:
    if not records:
        raise LoramemError(f"{path}: holds no records")
    # The "document" of a fact table, used by in-context answering, is the facts as lines.
    doc = "\n".join(f"{r.prompt} {r.target}" for r in records)
    return Source(path=path, text=doc, digest=digest, records=records)


def records_source(rows: Sequence[dict], label: str = "records", limits: InputLimits | None = None) -> Source:
    """Question-answer records given in memory (dicts like a .jsonl file's rows), checked as a file's are.

    The digest is that of the rows written as JSONL, so it does not depend on where they came from.
    """
    path = Path(label)
    records = [_record(path, str(n), row, limits or InputLimits()) for n, row in enumerate(rows, 1)]
    data = "".join(json.dumps(dict(row)) + "\n" for row in rows).encode()
    return _records_source(path, records, hashlib.sha256(data).hexdigest())


def document_source(text: str, label: str = "document.md", limits: InputLimits | None = None) -> Source:
    """A document given in memory; `label` stands for its file name (the title when it has no heading)."""
    if not isinstance(text, str) or not text.strip():
        raise LoramemError(f"{label}: the document is empty")
    (limits or InputLimits()).check_document_chars(label, text)
    return Source(path=Path(label), text=text, digest=hashlib.sha256(text.encode()).hexdigest())


def read_sources(paths: Sequence[str | Path], records: Sequence[dict] | None = None,
                 documents: Mapping[str, str] | None = None, limits: InputLimits | None = None) -> list[Source]:
    """The files at `paths`, then `records` and `documents` (label → text) given in memory.

    `limits` (default: InputLimits()) bounds what one record and one document may hold.
    """
    sources = [read_source(p, limits) for p in paths]
    if records is not None:
        sources.append(records_source(records, limits=limits))
    sources += [document_source(text, label, limits) for label, text in (documents or {}).items()]
    if not sources:
        raise LoramemError("give at least one file, records or documents to write")
    return sources
