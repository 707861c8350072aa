"""The commands on a memory's versions and on the store itself: log, rollback, gc, recover."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from loramem.cli.memory import app
from loramem.cli.options import JsonOpt, StoreOpt, open_store, out


@app.command("log")
def log_versions(name: str, as_json: bool = JsonOpt, store: Path | None = StoreOpt) -> None:
    """List a memory's versions: what each changed, its recall and how long it took."""
    versions = open_store(store).versions(name)
    if as_json:
        print(json.dumps([v.summary() for v in versions]))
        return
    table = Table()
    for col in ("version", "created (UTC)", "change", "recall", "seconds"):
        table.add_column(col, no_wrap=col != "change")
    for v in versions:
        s = v.summary()
        change = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in v.change.items()
                           if k in ("added", "superseded", "removed", "unchanged") or k.startswith("documents"))
        kind = v.change.get("kind", "write") + (f" ({v.change['method']})" if "method" in v.change else "")
        table.add_row(f"{'* ' if v.current else ''}{v.version}" + (f" (from {v.parent})" if v.parent else ""),
                      v.created[:16].replace("T", " "), f"{kind}{': ' + change if change else ''}",
                      f"{s['recall']:.0%}", f"{s['seconds']:.1f}" if s["seconds"] is not None else "")
    out.print(table)
    out.print("* current version; ask an older one with --memory NAME@VERSION")


@app.command()
def rollback(name: str, version: int, store: Path | None = StoreOpt) -> None:
    """Make an earlier version of a memory current again (later versions are kept)."""
    record = open_store(store).rollback(name, version)
    out.print(f"{name} is at version {record.version} again (recall {record.recall:.1%})")


@app.command()
def gc(
    name: str | None = typer.Argument(None, help="the memory (default: every memory)"),
    keep: int = typer.Option(0, "--keep", help="old versions to keep besides the current one"),
    store: Path | None = StoreOpt,
) -> None:
    """Delete old versions and their adapter folders; the current version always stays."""
    versions, folders = open_store(store).gc(name, keep)
    out.print(f"removed {versions} old versions ({folders} adapter folders)")


@app.command()
def recover(store: Path | None = StoreOpt) -> None:
    """Rebuild a lost or damaged catalogue from the adapter folders (their listings); nothing is deleted."""
    from loramem.store import default_store_path
    from loramem.store.recover import recover as rebuild

    report = rebuild(store or default_store_path())
    if report.set_aside:
        out.print(f"the unreadable catalogue was moved to {report.set_aside}")
    out.print(f"listed again: {len(report.memories)} memories ({report.versions} versions)"
              + (f": {', '.join(report.memories)}" if report.memories else ""))
    if report.legacy:
        out.print(f"{len(report.legacy)} folders from before listings, as {', '.join(report.legacy)}: "
                  "rename them by writing again")
