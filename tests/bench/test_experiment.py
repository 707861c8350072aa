"""The experiment runner and report, on the tiny model."""

import json

import pytest

from loramem.bench.experiment import ExperimentConfig, run_experiment
from loramem.bench.report import write_report
from loramem.errors import LoramemError


def config(tiny_model_dir, **over):
    raw = {"name": "tiny", "model": str(tiny_model_dir), "dataset": {"name": "phonebook"}, "sizes": [2, 4],
           "ranks": [1, 4], "training": {"epochs": 2, "lr": 0.01, "batch_size": 4, "warmup_steps": 1},
           "metrics": ["phone_digits", "exact_match"], **over}
    return ExperimentConfig.from_dict(raw)


def test_bad_configs_are_rejected_with_the_valid_keys(tiny_model_dir):
    with pytest.raises(LoramemError, match="unknown key.*rnaks.*valid:.*ranks"):
        ExperimentConfig.from_dict({"rnaks": [1]})
    with pytest.raises(LoramemError, match="unknown training setting.*epoch\\b"):
        ExperimentConfig.from_dict({"training": {"epoch": 3}})
    with pytest.raises(LoramemError, match="unknown dataset 'phonbook'"):
        ExperimentConfig.from_dict({"dataset": {"name": "phonbook"}})
    with pytest.raises(LoramemError, match="rank must be a positive"):
        ExperimentConfig.from_dict({"ranks": [0]})
    with pytest.raises(LoramemError, match="unknown metric"):
        config(tiny_model_dir, metrics=["accuracy"])


def test_grid_runs_resumes_and_reports(tiny_model_dir, tmp_path):
    cfg = config(tiny_model_dir)
    assert len(cfg.runs()) == 4 and len({r.key for r in cfg.runs()}) == 4
    out = tmp_path / "exp"
    results = run_experiment(cfg, out, log=lambda m: None, progress=False)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 4 and {(r["size"], r["rank"]) for r in rows} == {(2, 1), (2, 4), (4, 1), (4, 4)}
    assert all(0 <= r["phone_digits"] <= 1 and r["questions"] == r["entries"] for r in rows)
    assert rows[0]["parameters"] < rows[1]["parameters"]  # rank 1 < rank 4
    assert (out / "config.yaml").is_file()
    # interrupted sweep: drop the last row, rerun, only that run is redone
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    logs = []
    run_experiment(cfg, out, log=logs.append, progress=False)
    assert "3 already done" in logs[0]
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    report = write_report(out)
    text = report.read_text()
    assert "| entries | rank |" in text and "phone_digits" in text
    capacity = text.split("Capacity at tau = 0.9", 1)[1]  # one row per rank, T_max from that rank's runs
    for rank in (1, 4):
        scores = {r["entries"]: r["phone_digits"] for r in rows if r["rank"] == rank}
        stored = [n for n, s in scores.items() if s >= 0.9]
        t_max = (f"{max(stored)}" if min(scores.values()) < 0.9 else f">= {max(stored)}") if stored else "-"
        assert f"| {rank} | {rows[0 if rank == 1 else 1]['parameters']:,} | {t_max} |" in capacity
        read, n = max((s * n, n) for n, s in scores.items())  # most entries read back, at which size
        line = next(x for x in capacity.splitlines() if x.startswith(f"| {rank} | "))
        assert line.endswith(f"| {round(read)} of {n} |"), line
    assert (out / "accuracy_vs_size.png").stat().st_size > 1000 and (out / "efficiency_vs_rank.png").is_file()


def test_only_runs_the_picked_cells_of_the_grid(tiny_model_dir, tmp_path, capsys):
    import sys

    import yaml

    from loramem.cli import main

    cfg = tmp_path / "grid.yaml"
    raw = {"name": "tiny", "model": str(tiny_model_dir), "dataset": {"name": "phonebook"}, "sizes": [2, 4],
           "ranks": [1, 2, 4], "training": {"epochs": 1, "batch_size": 4}}
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "exp"

    def bench_run(*only: str) -> int:
        argv, sys.argv = sys.argv, ["loramem", "bench", "run", str(cfg), "--out", str(out), *only]
        try:
            main()
        except SystemExit as e:
            return e.code or 0
        finally:
            sys.argv = argv
        return 0

    assert bench_run("--only", "size=4", "--only", "rank=1,4") == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["size"], r["rank"]) for r in rows) == [(4, 1), (4, 4)]
    assert yaml.safe_load((out / "config.yaml").read_text())["ranks"] == [1, 2, 4]  # the whole grid, not the cut
    assert "2 runs picked by --only of 6" in capsys.readouterr().err
    assert bench_run("--only", "rank=3") == 1
    err = capsys.readouterr().err
    assert "matches no run" in err and "'rank': ['1', '2', '4']" in err
    assert bench_run("--only", "ranks=1") == 1
    assert "KEY one of size, rank" in capsys.readouterr().err


def test_the_committed_paper_configs_are_valid():
    from pathlib import Path

    from loramem.bench.experiment import ExperimentConfig

    configs = sorted((Path(__file__).parents[2] / "benchmarks" / "configs").rglob("*.yaml"))
    assert len(configs) >= 8  # the paper's grids and their cuts for a 2-core CPU (cpu/)
    for path in configs:
        assert ExperimentConfig.load(path).runs(), path
