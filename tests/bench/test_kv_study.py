"""`bench kv` on the tiny model: every (press, RHO, phase, format) cell and the hybrids, resumable."""

import json

import pytest

from conftest import FAST_TRAIN
from loramem.bench.kv import run_kv_study
from loramem.errors import LoramemError
from loramem.training import TrainConfig


def test_kv_study_rows_report_and_resume(tmp_path, tiny_model_dir):
    paper = {"title": "Kessreth", "introduction": "The harbour of Kessreth was built in 1642. " * 12,
             "QA": [{"question": "When was the harbour built?", "answer": "In 1642.", "level": 1},
                    {"question": "Where is the harbour?", "answer": "In Kessreth.", "level": 2}]}
    data = tmp_path / "papers.json"
    data.write_text(json.dumps([paper]))
    args = dict(rhos=(0.0, 0.5, 1.0), presses=("knorm",), formats=("raw",), config=TrainConfig(**{**FAST_TRAIN, "epochs": 2}),
                model=str(tiny_model_dir), max_new_tokens=8, log=lambda m: None)
    report = run_kv_study(data, tmp_path / "out", **args)
    rows = [json.loads(line) for line in (tmp_path / "out" / "kv-results.jsonl").read_text().splitlines()]
    kv = [r for r in rows if r["part"] == "kv"]
    assert len(kv) == 3 * 3 * 2  # RHO values x (none, decode, prefill+decode) x questions
    half = [r for r in kv if r["rho"] == 0.5 and r["phase"] == "none"]
    assert all(abs(r["kept_tokens"] - r["document_tokens"] / 2) <= 1 for r in half)
    assert all(r["kept_tokens"] == 0 for r in kv if r["rho"] == 1.0)
    modes = {r["mode"] for r in rows if r["part"] == "modes"}
    assert modes == {"parametric", "icl", "rag", "parametric+icl", "parametric+rag"}
    text = report.read_text()
    assert "| knorm | decode | raw |" in text and (tmp_path / "out" / "rouge-vs-rho.png").stat().st_size > 0
    run_kv_study(data, tmp_path / "out", **args)  # resumes: nothing is asked again
    assert len((tmp_path / "out" / "kv-results.jsonl").read_text().splitlines()) == len(rows)
    with pytest.raises(LoramemError, match=r"other settings.*training\.epochs: 2 -> 3"):
        run_kv_study(data, tmp_path / "out", **{**args, "config": TrainConfig(**{**FAST_TRAIN, "epochs": 3})})
    with pytest.raises(LoramemError, match=r"formats: \['raw'\] -> \['raw', 'qa'\]"):
        run_kv_study(data, tmp_path / "out", **{**args, "formats": ("raw", "qa")})


def test_report_of_a_sweep_at_rho_0_and_1_only_has_its_numbers(tmp_path):
    import json

    from loramem.bench.kv import write_kv_report

    rows = [{"block": "b", "paper": 0, "part": "kv", "press": "-", "rho": rho, "phase": phase, "format": fmt,
             "question": "q", "gold": "g", "answer": "a", "rouge_l": score, "document_tokens": 10,
             "kept_tokens": 0 if rho else 10, "cache_bytes": 0 if rho else 100}
            for rho, phase, fmt, score in [(0.0, "none", "-", 0.3), (1.0, "none", "-", 0.2), (1.0, "decode", "qa", 0.35)]]
    (tmp_path / "kv-results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = write_kv_report(tmp_path).read_text()
    assert "| - | decode | qa |  | 0.350 |" in report and "| decode | qa |  | +0.150 |" in report
