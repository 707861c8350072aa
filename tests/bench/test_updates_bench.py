"""bench updates: the stream's truth, and one short run end to end on the tiny model."""

import json

from conftest import FAST_TRAIN
from loramem.bench.update_stream import Truth, make_stream
from loramem.bench.updates import run_updates_bench, write_updates_report
from loramem.supervision.examples import Example
from loramem.training import TrainConfig

TABLE = [Example(f"Phone of P{i}?", f"555-{i:03d}-0000", "record") for i in range(12)]
EDITS = [Example("Lenta.ru is written in", "Italian", "record"), Example("The Eiffel Tower is in", "Rome", "record")]


def test_the_stream_adds_changes_deletes_and_its_truth_follows():
    first, stream = make_stream(TABLE, start=4, updates=2, add=2, change=1, delete=1, edits=EDITS, edits_per_update=1)
    assert [r["question"] for r in first] == [f"Phone of P{i}?" for i in range(4)]
    truth = Truth(current={r["question"]: r["answer"] for r in first})
    for update in stream:
        assert update.kinds == {"added": 2, "changed": 1, "deleted": 1, "edits": 1}
        changed = update.records[2]
        old = truth.current[changed["question"]]
        assert changed["answer"] != old and len(changed["answer"]) == len(old)  # a phone number stays one
        assert update.removed[0]["question"] in truth.current
        truth.apply(update)
        assert old in truth.superseded[changed["question"]]
        assert update.removed[0]["question"] in truth.deleted
    assert len(truth.current) == 4 + 2 * (2 - 1 + 1) and "Lenta.ru is written in" in truth.current
    assert not any(q.startswith("Lenta") for q in truth.deleted)  # deletions touch the fact table only


def test_a_short_run_writes_results_and_a_report(tmp_path, tiny_model_dir):
    records = tmp_path / "pb.jsonl"
    records.write_text("".join(json.dumps({"question": e.prompt, "answer": e.target}) + "\n" for e in TABLE[:4]))
    out = tmp_path / "out"
    results = run_updates_bench(out, model=str(tiny_model_dir), methods=["replay"], records=str(records), start=2,
                                updates=1, add=1, change=1, delete=0, edits=0, general=0,
                                config=TrainConfig(**FAST_TRAIN), log=lambda _m: None)
    rows = results["replay"]
    assert [r["update"] for r in rows] == [0, 1] and rows[1]["version"] == 2 and rows[1]["facts"] == 3
    assert rows[1]["alone_seconds"] > 0 and rows[1]["superseded"] == 1
    assert rows[1]["change"] == {"added": 1, "changed": 1, "deleted": 0, "edits": 0}
    assert rows[1]["base_kept"] == rows[1]["base_kept_weights"] == 1.0  # no probe questions: nothing to lose
    report = write_updates_report(out).read_text()
    assert "| replay |" in report and (out / "updates-replay.png").stat().st_size > 1000
