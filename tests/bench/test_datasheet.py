import json

from conftest import FAST_TRAIN
from loramem.bench.datasheet import BITS_PER_ENTRY, DEFAULT_CAPACITY, measure, recommend, summarize, write_datasheet
from loramem.training import TrainConfig


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
    # going up, a rank stops at its first failure; a rank whose first size fails halves down to a stored one
    for rank in (1, 8):
        ps = [p for p in probes if p.rank == rank]
        if ps[0].recall >= 0.9:
            assert all(p.recall >= 0.9 for p in ps[:-1]) and all(b.entries == 2 * a.entries for a, b in zip(ps, ps[1:]))
        else:
            assert all(b.entries == a.entries // 2 for a, b in zip(ps, ps[1:]))
            assert all(p.recall < 0.9 for p in ps[:-1]) and (ps[-1].recall >= 0.9 or ps[-1].entries == 1)
    # rank 8 starts where rank 1 stopped storing
    stored_1 = [p.entries for p in probes if p.rank == 1 and p.recall >= 0.9]
    assert next(p for p in probes if p.rank == 8).entries == max([2, *stored_1])
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


def test_probe_order_starts_at_the_previous_rank_and_halves_after_a_first_failure(tiny_base, monkeypatch):
    from types import SimpleNamespace

    import loramem.bench.datasheet as datasheet

    capacity = {1: 2, 2: 0, 4: 16}  # entries each rank stores (rank 2: not even one)

    budgets = {}

    def fake_train(base, entries, config, folder, progress):
        budgets[len(entries)] = config.epochs
        recall = 1.0 if len(entries) <= capacity[config.rank] else 0.5
        return SimpleNamespace(recall=recall, epochs=1, parameters=config.rank * 100)

    monkeypatch.setattr(datasheet, "train_memory", fake_train)
    probes = datasheet.measure(tiny_base, [4, 1, 2], start=8, max_entries=64, log=lambda m: None)
    assert [(p.rank, p.entries) for p in probes] == [
        (1, 8), (1, 4), (1, 2),  # 8 fails first: halve to a stored size
        (2, 8), (2, 4), (2, 2), (2, 1),  # nothing stored: down to one entry
        (4, 8), (4, 16), (4, 32),  # starts at max(start, rank 2's 0)
    ]
    # every probe may take MIN_STEPS optimizer steps (batch 8): small sizes get more epochs
    assert budgets == {1: 800, 2: 400, 4: 200, 8: 100, 16: 50, 32: 40}
    sheet = datasheet.summarize(probes, 0.9, "fake")
    assert [(r["rank"], r["t_max_entries"], r["saturation_entries"]) for r in sheet["ranks"]] == [
        (1, 2, 4), (2, 0, 1), (4, 16, 32)]
