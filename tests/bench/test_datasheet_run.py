"""`loramem datasheet` runs the library's sweep (quick or full) and saves the copy `write --rank auto` reads."""

from __future__ import annotations

import json

import pytest

from loramem.bench import datasheet
from loramem.bench.datasheet import Probe
from loramem.capacity import load_saved
from loramem.cli import main
from loramem.training import TrainConfig


def test_datasheet_sweeps_and_saves(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path / "cache"))
    calls = []

    def measure(base, ranks, tau, start, max_entries, config, log, batch_memories):
        calls.append((ranks, tau, start, max_entries, config.epochs, batch_memories))
        return [Probe(rank=r, entries=16, tokens=160, recall=1.0, epochs=3, seconds=1.0, parameters=100 * r)
                for r in ranks]

    monkeypatch.setattr(datasheet, "measure", measure)  # datasheet_run imports it when it runs
    for args in (["--quick"], ["--ranks", "2,8", "--tau", "0.8", "--batch-memories", "2"]):
        monkeypatch.setattr("sys.argv", ["loramem", "datasheet", "--out", str(tmp_path / "sheet"),
                                         "--model", str(tiny_model_dir), *args])
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code in (0, None)
    assert calls == [([1, 4], 0.9, 16, 64, 25, 1), ([2, 8], 0.8, 8, 1024, TrainConfig().epochs, 2)]
    written = json.loads((tmp_path / "sheet" / "datasheet.json").read_text())
    from loramem.models import load_base

    assert load_saved(load_base(str(tiny_model_dir)).fingerprint) == written
    assert [r["rank"] for r in written["ranks"]] == [2, 8]
    assert "used by write --rank auto" in " ".join(capsys.readouterr().out.split())
