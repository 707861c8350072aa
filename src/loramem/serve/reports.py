"""The datasheet and the committed studies (`benchmarks/**.md` and their plots) for the web page.

Markdown is rendered by markdown-it-py (CommonMark plus tables) with raw HTML off and its link
check on, so a report can format text but cannot put a script or a `javascript:` link on the
page. The benchmarks folder belongs to the repository, not the package: it is looked for in
`$LORAMEM_BENCHMARKS`, then `./benchmarks`, then beside the source checkout; an installed
package has none, and the endpoints say so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from loramem.serve.errors import APIError

SKIP_DIRS = {"store", "adapters", "documents", "cache"}  # data a study keeps, not reports
SERVED = {".md", ".png"}


def find_benchmarks() -> Path | None:
    """The repository's benchmarks folder, or None when there is none (an installed package)."""
    env = os.environ.get("LORAMEM_BENCHMARKS")
    candidates = [Path(env)] if env else [Path.cwd() / "benchmarks", Path(__file__).resolve().parents[3] / "benchmarks"]
    return next((p.resolve() for p in candidates if p.is_dir()), None)


def missing_message() -> str:
    where = os.environ.get("LORAMEM_BENCHMARKS") or f"{Path.cwd() / 'benchmarks'}"
    return (f"no benchmarks folder found (looked in {where}): the studies are committed in the loramem repository; "
            "run `loramem serve` from a checkout, or set LORAMEM_BENCHMARKS to its benchmarks folder")


def render_markdown(text: str) -> str:
    """HTML of `text`: CommonMark with tables, raw HTML shown as text, unsafe links dropped."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).render(text)


def _reports(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*.md")):
        parts = path.relative_to(root).parts
        if not any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
            found.append(path)
    return found


def _title(path: Path) -> str:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem


def _inside(root: Path, rel: str) -> Path:
    """`rel` under `root`, refused (404) when it leaves it, is not a report or plot, or is absent."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or path.suffix.lower() not in SERVED or not path.is_file():
        raise APIError(404, f"no report or plot {rel!r} in {root}", code="study_not_found")
    return path


def committed_datasheets(root: Path | None) -> list[dict]:
    """Each `datasheet.json` under the benchmarks folder, with its plot's path when it has one."""
    if root is None:
        return []
    out = []
    for path in sorted(root.rglob("datasheet.json")):
        try:
            sheet = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        plot = path.with_name("capacity.png")
        rel = path.parent.relative_to(root).as_posix()
        out.append({"path": rel, "model": sheet.get("model"), "sheet": sheet,
                    "plot": f"{rel}/capacity.png" if plot.is_file() else None,
                    "report": f"{rel}/datasheet.md" if path.with_name("datasheet.md").is_file() else None})
    return out


def add_report_routes(app: FastAPI, server) -> None:
    """Add `/v1/loramem/datasheet` and `/v1/loramem/studies[/PATH]` to `app`."""

    @app.get("/v1/loramem/datasheet")
    def datasheet():
        from loramem.capacity import DEFAULT_CAPACITY, load_saved, saved_path

        root = find_benchmarks()
        base = server.base
        return {"object": "loramem.datasheet", "model": base.name, "fingerprint": base.fingerprint,
                "measured": load_saved(base.fingerprint), "saved_path": str(saved_path(base.fingerprint)),
                "defaults": {str(k): v for k, v in DEFAULT_CAPACITY.items()},
                "committed": committed_datasheets(root), "message": None if root else missing_message()}

    @app.get("/v1/loramem/studies")
    def studies():
        root = find_benchmarks()
        if root is None:
            return {"object": "list", "data": [], "root": None, "message": missing_message()}
        data = [{"path": p.relative_to(root).as_posix(), "title": _title(p),
                 "folder": p.relative_to(root).parts[0] if len(p.relative_to(root).parts) > 1 else ""}
                for p in _reports(root)]
        return {"object": "list", "data": data, "root": str(root), "message": None}

    @app.get("/v1/loramem/studies/{rel:path}")
    def study(rel: str):
        root = find_benchmarks()
        if root is None:
            raise APIError(404, missing_message(), code="no_benchmarks")
        path = _inside(root, rel)
        if path.suffix.lower() == ".png":
            return FileResponse(path, media_type="image/png")
        text = path.read_text(errors="replace")
        return {"object": "loramem.study", "path": path.relative_to(root.resolve()).as_posix(), "title": _title(path),
                "html": render_markdown(text)}
