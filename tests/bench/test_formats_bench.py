"""`bench formats` on the tiny model: a row per question for each format, QA from a URL generator, resumable."""

import json

import pytest

from chat_server import Server
from conftest import FAST_TRAIN
from loramem.bench.formats import run_format_comparison
from loramem.errors import LoramemError
from loramem.training import TrainConfig


def test_format_comparison_through_a_url_generator(tmp_path, tiny_model_dir):
    paper = {"title": "Velmont", "introduction": "The Velmont Observatory opened in 1887. "
             "Its first director was Edda Falkenrath. " * 3,
             "QA": [{"question": "When did the Velmont Observatory open?", "answer": "In 1887.", "level": 1},
                    {"question": "Who was its first director?", "answer": "Edda Falkenrath.", "level": 2}]}
    data = tmp_path / "papers.json"
    data.write_text(json.dumps([paper]))
    server = Server()
    try:
        args = dict(config=TrainConfig(**{**FAST_TRAIN, "epochs": 2}), model=str(tiny_model_dir),
                    generator=server.url, generator_options={"model": "m"}, log=lambda m: None)
        summary = run_format_comparison(data, tmp_path / "out", ["raw", "qa:2"], **args)
        asked = len(server.requests)
        assert asked > 0  # the QA came from the server
        rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
        assert [(r["format"], r["level"]) for r in rows] == [
            ("base (no memory)", 1), ("base (no memory)", 2), ("raw", 1), ("raw", 2), ("qa:2", 1), ("qa:2", 2)]
        assert next(r for r in rows if r["format"] == "qa:2")["kinds"] == {"qa": 2}
        assert [s["format"] for s in summary] == ["base (no memory)", "raw", "qa:2"]
        assert all(0.0 <= s["rouge_l"] <= 1.0 and s["questions"] == 2 for s in summary)
        run_format_comparison(data, tmp_path / "out", ["raw", "qa:2"], **args)  # resumes: nothing is redone
        assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == len(rows)
        assert len(server.requests) == asked
        with pytest.raises(LoramemError, match=r"other settings.*training\.epochs: 2 -> 3"):
            other = TrainConfig(**{**FAST_TRAIN, "epochs": 3})
            run_format_comparison(data, tmp_path / "out", ["raw"], **{**args, "config": other})
    finally:
        server.close()


def test_judge_pass_grades_each_answer_once_and_shows_in_the_summary(tmp_path):
    from loramem.bench.formats import judge_results, summarize, summary_markdown
    from loramem.bench.judge import Judge
    from supervision.scripted import ScriptedGenerator

    results = tmp_path / "results.jsonl"
    rows = [{"paper": "0", "format": f, "level": 1, "question": "When?", "gold": "In 1887.", "answer": a,
             "rouge_l": 0.5} for f, a in (("raw", "In 1887."), ("raw", "Never."))]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    grader = ScriptedGenerator({"Answer to grade: In 1887.": '{"factual_alignment": 9, "completeness": 9, '
                                '"relevance": 9}'}, default="factual_alignment: 0, completeness: 3, relevance: 3")
    judge = Judge(client=grader)
    assert judge_results(results, judge, log=lambda m: None) == 2
    assert [r["judge"] for r in map(json.loads, results.read_text().splitlines())] == [9.0, 2.0]
    assert judge_results(results, judge, log=lambda m: None) == 0 and grader.calls == 2
    summary = summarize(results, ["raw"])
    assert summary[0]["judge"] == 5.5 and "judge (0-10)" in summary_markdown(summary)
