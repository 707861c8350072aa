"""`bench routers`: router accuracy over partitions indexed as `write` indexes them (no training)."""

import json

import pytest

from loramem.bench.datasets.phonebook import phonebook
from loramem.cli import main
from loramem.errors import LoramemError
from loramem.routing import first_stage_routers


def _partitions(tmp_path, parts=4, per=12):
    entries = phonebook(parts * per, seed=3)
    files = []
    for p in range(parts):
        path = tmp_path / f"sector_{p:02d}.csv"
        rows = [f'"Question: {e.prompt} Answer: {e.target}"' for e in entries[p * per:(p + 1) * per]]
        path.write_text("text\n" + "\n".join(rows) + "\n")
        files.append(path)
    return files


def test_routers_find_each_questions_partition(tmp_path, capsys, monkeypatch):
    files = _partitions(tmp_path)
    monkeypatch.setattr("sys.argv", ["loramem", "bench", "routers", *map(str, files), "--top-k", "1,2",
                                     "--per-partition", "6", "--json"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["partitions"] == 4 and result["questions"] == 24
    routers = result["routers"]
    assert set(routers) == set(first_stage_routers()) >= {"embedding", "bm25", "hybrid"}  # every catalogue router
    for r in routers.values():
        assert 0 <= r["hit@1"] <= r["hit@2"] <= 1 and r["p50_ms"] > 0
    # A question names one person, who is listed in one partition only: both signals find it.
    assert routers["embedding"]["hit@1"] >= 0.9 and routers["bm25"]["hit@2"] >= 0.9


def test_routers_bad_input(tmp_path):
    from loramem.bench.routers import run_router_accuracy

    files = _partitions(tmp_path, parts=2, per=3)
    with pytest.raises(LoramemError, match="top-k 3 exceeds the 2 partitions"):
        run_router_accuracy(files, ks=(1, 3))
    with pytest.raises(LoramemError, match="at least two partitions"):
        run_router_accuracy(files[:1])
    with pytest.raises(LoramemError, match="unknown router 'bm52'. Did you mean 'bm25'"):
        run_router_accuracy(files, routers=["bm52"], ks=(1,))
    with pytest.raises(LoramemError, match="'rerank' reads the memories' adapters"):
        run_router_accuracy(files, routers=["rerank"], ks=(1,))
    doc = tmp_path / "notes.md"
    doc.write_text("# Notes\n\nNo records here.\n")
    with pytest.raises(LoramemError, match="notes.md: router accuracy needs question-answer records"):
        run_router_accuracy([files[0], doc], ks=(1,))
