"""`bench knowledge-base --index-only`: papers and distractors indexed as a write indexes them, every
question routed by every first-stage router into routes.jsonl, resumable, bad input refused in one line."""

import json

import pytest

from chat_server import Server
from loramem.cli import main
from loramem.routing import first_stage_routers
from loramem.store import MemoryStore

PAPERS = [
    {"id": "p-harbour", "title": "The harbour of Kessreth", "introduction": "The harbour of Kessreth was built in 1642 "
     "by the engineer Ilse Varnhagen. Its granite breakwater shelters two hundred fishing boats. " * 3,
     "QA": [{"level": 1, "question": "Who built the harbour of Kessreth?", "answer": "Ilse Varnhagen."},
            {"level": 2, "question": "What shelters the fishing boats at Kessreth?", "answer": "A breakwater."}]},
    {"id": "p-volcano", "title": "Mount Ferrox", "introduction": "Mount Ferrox is a volcano 3,120 metres tall. "
     "It last erupted in 1887, burying the valley of Oresk under ash. " * 3,
     "QA": [{"level": 1, "question": "When did Mount Ferrox last erupt?", "answer": "In 1887."},
            {"level": 3, "question": "Which valley did the Ferrox ash bury?", "answer": "Oresk."}]},
    {"id": "p-orchestra", "title": "The Velmont orchestra", "introduction": "The Velmont orchestra is conducted by "
     "Oda Brightwater. Twenty violinists play in it every winter season. " * 3,
     "QA": [{"level": 1, "question": "Who conducts the Velmont orchestra?", "answer": "Oda Brightwater."}]},
]


def _run(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["loramem", "bench", "knowledge-base", *args])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return done.value.code or 0, captured.out, captured.err


def test_index_only_routes_every_question_with_every_router(tmp_path, monkeypatch, capsys, tiny_model_dir):
    data = tmp_path / "papers.json"
    data.write_text(json.dumps(PAPERS))
    server = Server()
    out = tmp_path / "kb"
    args = ["--data", str(data), "--out", str(out), "--index-only", "--distractors", "3", "--scale", "20",
            "--model", str(tiny_model_dir), "--generator", server.url, "--generator-model", "m", "--json"]
    try:
        code, printed, err = _run(monkeypatch, capsys, *args)
        assert code == 0, err
        asked = len(server.requests)
        assert asked > 0  # each memory's supervision was generated, as a write generates it
        result = json.loads(printed.strip().splitlines()[-1])
        assert (result["papers"], result["distractors"], result["questions"]) == (3, 3, 5)
        assert set(result["scale"]) == {"20"} and result["scale"]["20"]["fused"]["p50_ms"] > 0  # among 20 copies
        assert set(result["routers"]) == set(first_stage_routers())
        for r in result["routers"].values():
            assert 0 <= r["hit_at_1"] <= r["hit_at_3"] <= 1 and r["p50_ms"] > 0
        assert result["routers"]["bm25"]["hit_at_1"] == 1.0  # each question shares its names with its paper only
        rows = [json.loads(line) for line in (out / "routes.jsonl").read_text().splitlines()]
        assert len(rows) == 5 * len(first_stage_routers())
        row = rows[0]
        assert set(row) >= {"paper", "router", "level", "routes"} and len(row["routes"]) == 3
        papers = {route["paper"] for r in rows for route in r["routes"]}
        assert papers <= {"p-harbour", "p-volcano", "p-orchestra", None} and None in papers  # distractors: null
        scores = [route["score"] for route in row["routes"]]
        assert scores == sorted(scores, reverse=True)
        items = MemoryStore(out / "store").index_items()
        # the served QA ("When did the Velmont Observatory open? 1887") is kept where its answer is in the text
        assert ("question", "When did the Velmont Observatory open? 1887") in items["paper-p-volcano"]
        assert {kind for kind, _ in items["paper-p-harbour"]} == {"passage"}
        code, _, err = _run(monkeypatch, capsys, *args)  # resumes: nothing generated or routed again
        assert code == 0 and len(server.requests) == asked
        assert len((out / "routes.jsonl").read_text().splitlines()) == len(rows)
    finally:
        server.close()
    for bad, message in ((["--distractors", "9000"], "--distractors takes 0 to 8807"),
                         (["--top-k", "4"], "--top-k takes 1 to 3")):
        code, _, err = _run(monkeypatch, capsys, "--data", str(data), "--out", str(tmp_path / "bad"), "--index-only",
                            "--model", str(tiny_model_dir), *bad)
        assert code != 0 and message in err and "Traceback" not in err


def test_full_run_answers_every_arm_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    from conftest import FAST_TRAIN
    from loramem.bench import knowledge_base_answers as answers
    from loramem.training import TrainConfig

    monkeypatch.setattr(answers, "MAX_NEW_TOKENS", 4)
    data = tmp_path / "papers.json"
    data.write_text(json.dumps(PAPERS))
    server = Server()
    out = tmp_path / "kb"
    args = dict(papers=[0, 1], routers=["auto", "fused"], merges=["sum", "ties"], top_k=2,
                config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}), model=str(tiny_model_dir),
                generator=server.url, generator_options={"model": "m"}, scale=[7], log=lambda m: None)
    try:
        report = answers.run_answers(data, out, **args)
        assert "Routing among 7 memories: auto p50" in report.read_text()  # the rerank reads the copies' adapters
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        blocks = {r["block"] for r in rows}
        assert blocks == {"base", "oracle", "icl", "routed|auto", "routed|fused", "merge|sum", "merge|ties",
                          "parametric+rag|routed", "parametric+rag|routed-1", "rag|collection", "large", "interference|sum|2",
                          "interference|ties|2", "held-out|auto"}
        assert sum(r["block"] == "oracle" for r in rows) == 4  # the two papers' questions
        held = [r for r in rows if r["block"] == "held-out|auto"]
        assert len(held) == 1 and held[0]["paper"] == "p-orchestra" and held[0]["hit"] is None
        oracle = next(r for r in rows if r["block"] == "oracle" and r["paper"] == "p-volcano")
        assert oracle["memories"] == ["paper-p-volcano"] and oracle["hit"] and 0 <= oracle["rouge_l"] <= 1
        assert next(r for r in rows if r["block"] == "interference|ties|2")["memories"][0] == "paper-p-harbour"
        assert set(next(r for r in rows if r["block"] == "rag|collection")["memories"]) == {"paper-p-harbour",
                                                                                            "paper-p-volcano"}
        text = report.read_text()
        assert "| oracle memory | 4 |" in text and "Interference (ties)" in text and (out / "knowledge-base.png").exists()
        asked = len(server.requests)
        answers.run_answers(data, out, **args)  # resumes: nothing written or answered again
        assert len((out / "results.jsonl").read_text().splitlines()) == len(rows) and len(server.requests) == asked
    finally:
        server.close()


def test_report_compares_each_arm_with_the_oracle_on_the_questions_it_asked():
    from loramem.bench.knowledge_base_report import arm_summaries, findings

    def row(block, q, rouge, paper="a"):
        return {"block": block, "arm": block, "paper": paper, "level": 1, "question": q, "rouge_l": rouge,
                "hit": None, "abstained": False, "seconds": 1.0}

    rows = [row("oracle", q, r) for q, r in (("q1", 0.2), ("q2", 0.4), ("q3", 0.6), ("q4", 0.8))]
    rows += [row("routed|auto", "q1", 0.1), row("routed|auto", "q3", 0.5)]  # asked 2 of the 4 (--questions)
    rows += [row("interference|ties|2", "q2", 0.3), row("held-out|auto", "q9", 0.3, paper="b")]
    summary = arm_summaries(rows)
    assert summary["routed|auto"]["oracle_same"] == pytest.approx(0.4)  # q1 and q3, not all four (0.5)
    assert summary["held-out|auto"]["oracle_same"] is None
    lines = "\n".join(findings(summary))
    assert "0.300 against the oracle memory's 0.400 on the same 2 questions (-10.0 points)" in lines
    assert "Interference (ties): N=1 0.400, N=2 0.300" in lines
