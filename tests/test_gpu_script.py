"""benchmarks/gpu/run.sh, the GPU path's one prepared script, checked on CPU in its smoke form: it sets up,
parses every step's exact command line (so a renamed command or option fails here, not on a lent GPU)
and writes its summary; a bad argument stops it before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "run.sh"
STEPS = ("setup", "tests", "perf", "corpus", "serve", "generator")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LORAMEM_PYTHON": sys.executable, "LORAMEM_DATA": str(tmp_path / "data")}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env)


def test_smoke_run_checks_every_step_on_cpu(tmp_path):
    (tmp_path / "data" / "paperqa").mkdir(parents=True)
    (tmp_path / "data" / "paperqa" / "paperQA_dev.json").write_text("[]")
    out = tmp_path / "results"
    done = _run("--device", "cpu", "--smoke", "--out", str(out), "--model", "some/model", tmp_path=tmp_path)
    log = (out / "log.txt").read_text()
    assert done.returncode == 0, done.stdout + done.stderr + log
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["smoke"] and summary["versions"]["torch"]
    assert tuple(summary["steps"]) == STEPS and all(s["status"] == "ok" for s in summary["steps"].values())
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "summary.json"]  # nothing measured, no scratch left
    for line in ("bench perf --device cpu --baseline-budget 90", "bench corpus --device cpu --json --model some/model",
                 "bench serve --device cpu --requests 25", "bench generator --data "):
        assert line in log


def test_bad_arguments_stop_it_first(tmp_path):
    assert _run("--device", "tpu", tmp_path=tmp_path).returncode == 2
    assert _run("--frobnicate", tmp_path=tmp_path).returncode == 2
    assert not (tmp_path / "results").exists()
