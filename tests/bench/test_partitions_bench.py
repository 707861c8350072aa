"""`bench partitions` on the tiny model: small memories, the large one, routers, merges, resume."""

import json

import pytest

from loramem.bench.datasets.phonebook import phonebook
from loramem.errors import LoramemError


def test_partition_study_rows_report_and_resume(tmp_path, tiny_model_dir):
    from loramem.bench.partitions import run_partitions

    entries = phonebook(6, seed=5)
    files = []
    for p in range(3):
        path = tmp_path / f"sector_{p}.jsonl"
        path.write_text("".join(json.dumps({"question": e.prompt, "answer": e.target}) + "\n"
                                for e in entries[2 * p:2 * p + 2]))
        files.append(path)
    out = tmp_path / "study"
    run = lambda: run_partitions(files, out, entries=2, rank=2, epochs=3, routers=("bm25",),  # noqa: E731
                                 merges=("sum", "ties"), top_k=2, max_merge=3, model=str(tiny_model_dir),
                                 log=lambda m: None)
    report = run()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    blocks = {r["block"] for r in rows}
    assert blocks == {"single|large", "single|oracle", "single|bm25", "merge|sum", "merge|ties",
                      "interference|sum|2", "interference|sum|3", "interference|ties|2", "interference|ties|3"}
    assert all(len([r for r in rows if r["block"] == b]) == 6 for b in blocks)  # every question in every block
    oracle = [r for r in rows if r["block"] == "single|oracle"]
    assert all(r["memories"] == [r["own"]] and r["hit"] for r in oracle)
    assert all(len(r["memories"]) == 3 and r["hit"] for r in rows if r["block"] == "interference|ties|3")
    assert all(0 <= r["score"] <= 1 for r in rows)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["metric"] == "phone_digits"
    from loramem import Memory

    mem = Memory(store=out / "store", model=str(tiny_model_dir), progress=False)
    assert mem.show("one-large").rank == 6 and mem.show("part-00").rank == 2  # the same parameter budget
    text = report.read_text()
    assert "| single | oracle router |" in text and "| ties |" in text and (out / "partitions.png").exists()
    before = (out / "results.jsonl").read_text()
    run()  # resumes: nothing left to do
    assert (out / "results.jsonl").read_text() == before


def test_partition_study_bad_input(tmp_path):
    from loramem.bench.partitions import run_partitions

    one = tmp_path / "a.jsonl"
    one.write_text(json.dumps({"question": "q?", "answer": "a"}) + "\n")
    with pytest.raises(LoramemError, match="at least two partition files"):
        run_partitions([one], tmp_path / "out")
    with pytest.raises(LoramemError, match="between 1 and the 2 partitions"):
        run_partitions([one, one], tmp_path / "out", top_k=3)


def test_rerun_with_another_rank_or_entries_is_refused(tmp_path, tiny_model_dir):
    from loramem.bench.partitions import run_partitions

    entries = phonebook(4, seed=6)
    files = []
    for p in range(2):
        path = tmp_path / f"sector_{p}.jsonl"
        path.write_text("".join(json.dumps({"question": e.prompt, "answer": e.target}) + "\n"
                                for e in entries[2 * p:2 * p + 2]))
        files.append(path)
    out = tmp_path / "study"

    def run(**over):
        args = dict(entries=1, rank=2, epochs=2, routers=(), merges=(), top_k=1, max_merge=1,
                    model=str(tiny_model_dir), log=lambda m: None)
        return run_partitions(files, out, **{**args, **over})

    run()
    before = (out / "results.jsonl").read_text()
    with pytest.raises(LoramemError, match=r"other settings.*rank: 2 -> 1"):
        run(rank=1)
    with pytest.raises(LoramemError, match=r"entries: 1 -> 2"):
        run(entries=2)
    files[1].write_text(json.dumps({"question": "Who?", "answer": "Ada."}) + "\n")
    with pytest.raises(LoramemError, match=r"file_sha256"):
        run()
    assert (out / "results.jsonl").read_text() == before
