import json

from loramem.bench.datasheet import BITS_PER_ENTRY, DEFAULT_CAPACITY, measure, recommend, summarize, write_datasheet
from loramem.training import TrainConfig

from conftest import FAST_TRAIN


def test_capacity_probe_summary_and_report(tiny_base, tmp_path):
    probes = measure(tiny_base, ranks=[1, 8], tau=0.9, start=2, max_entries=8,
                     config=TrainConfig(**FAST_TRAIN), log=lambda m: None)
    sheet = summarize(probes, 0.9, "tiny")
    by_rank = {r["rank"]: r for r in sheet["ranks"]}
    assert by_rank[1]["parameters"] < by_rank[8]["parameters"]
    for r in sheet["ranks"]:
        stored = [p for p in probes if p.rank == r["rank"] and p.recall >= 0.9]
        assert r["t_max_entries"] == (max(p.entries for p in stored) if stored else 0)
        assert r["bits_per_param"] == r["t_max_entries"] * BITS_PER_ENTRY / r["parameters"]
    # every rank stops probing at its first failure
    for rank in (1, 8):
        recalls = [p.recall for p in probes if p.rank == rank]
        assert all(x >= 0.9 for x in recalls[:-1])
    md = write_datasheet(sheet, tmp_path / "sheet")
    assert json.loads((tmp_path / "sheet" / "datasheet.json").read_text())["tau"] == 0.9
    assert "| rank | parameters |" in md.read_text() and (tmp_path / "sheet" / "capacity.png").is_file()


def test_recommendation():
    sheet = {"ranks": [{"rank": 2, "t_max_entries": 20}, {"rank": 8, "t_max_entries": 100}]}
    assert recommend(sheet, 15) == (2, 1)
    assert recommend(sheet, 60) == (8, 1)
    assert recommend(sheet, 250) == (8, 3)
    assert recommend(None, 10) == (min(DEFAULT_CAPACITY), 1)


def test_write_rank_auto_uses_the_saved_datasheet(tmp_path, tiny_model_dir, facts_jsonl, monkeypatch):
    from loramem import Memory
    from loramem.bench.datasheet import saved_path

    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path / "cache"))
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    train = TrainConfig(**{**FAST_TRAIN, "epochs": 1})
    assert mem.write([facts_jsonl], name="a", config=train, rank="auto").record.rank == min(DEFAULT_CAPACITY)
    sheet = {"ranks": [{"rank": 2, "t_max_entries": 1}, {"rank": 16, "t_max_entries": 2}]}
    path = saved_path(mem.base.fingerprint)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(sheet))
    result = mem.write([facts_jsonl], name="b", config=train, rank="auto")
    assert result.record.rank == 16 and any("split them over 2 memories" in n for n in result.notes)
