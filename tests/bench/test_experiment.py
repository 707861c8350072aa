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


TRAIN = {"epochs": 2, "lr": 0.01, "batch_size": 4, "warmup_steps": 1}


def test_run_key_covers_training_dataset_options_model_and_metrics(tiny_model_dir, other_tiny_model_dir):
    def key(**over):
        return config(tiny_model_dir, sizes=[2], ranks=[1], **over).runs()[0].key

    first = key()
    assert key() == first and key(name="renamed") == first
    assert key(dataset={"name": "phonebook", "data": None}) == first  # a loader default spelled out: the same run
    others = [key(training={**TRAIN, "epochs": 3}), key(dataset={"name": "phonebook", "seed": 3}),
              key(model=str(other_tiny_model_dir)), key(metrics=["exact_match"]), key(max_questions=1)]
    assert first not in others and len(set(others)) == len(others)


def test_rerun_with_other_settings_is_refused_and_the_grid_may_grow(tiny_model_dir, other_tiny_model_dir, tmp_path):
    out = tmp_path / "exp"
    quiet = dict(log=lambda m: None, progress=False)
    run_experiment(config(tiny_model_dir, sizes=[2], ranks=[1]), out, **quiet)
    saved = (out / "config.yaml").read_text()
    with pytest.raises(LoramemError, match=r"other settings.*training\.epochs: 2 -> 1.*another output folder"):
        run_experiment(config(tiny_model_dir, sizes=[2], ranks=[1], training={**TRAIN, "epochs": 1}), out, **quiet)
    with pytest.raises(LoramemError, match=r"dataset\.seed: \(not set\) -> 3"):
        run_experiment(config(tiny_model_dir, sizes=[2], ranks=[1], dataset={"name": "phonebook", "seed": 3}), out,
                       **quiet)
    with pytest.raises(LoramemError, match="model: .*tiny-llama.* -> .*tiny-llama-other"):
        run_experiment(config(other_tiny_model_dir, sizes=[2], ranks=[1]), out, **quiet)
    assert (out / "config.yaml").read_text() == saved  # it never claims settings its rows were not made with
    logs = []
    run_experiment(config(tiny_model_dir, sizes=[2], ranks=[1, 2]), out, log=logs.append, progress=False)
    assert "2 runs, 1 already done" in logs[0]  # a new cell of the same settings is added


def test_a_folder_of_results_without_saved_settings_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"key": "031baf9dcebbd062", "size": 2, "rank": 1}) + "\n")
    with pytest.raises(LoramemError, match="results.jsonl.*but no settings.json.*older loramem"):
        run_experiment(config(tiny_model_dir), out, log=lambda m: None, progress=False)


def test_report_scores_by_the_declared_metric_and_shows_the_judge(tiny_model_dir, tmp_path):
    from chat_server import Server

    server = Server("judge")
    try:
        cfg = config(tiny_model_dir, ranks=[1], metrics=["phone_digits", "phone_digit_share", "judge"],
                     judge={"url": server.url, "model": "m"})
        results = run_experiment(cfg, tmp_path / "exp", log=lambda m: None, progress=False)
    finally:
        server.close()
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert all(r["metric"] == "phone_digits" and r["judge"] == pytest.approx(0.8) for r in rows)
    text = write_report(tmp_path / "exp").read_text()
    assert "score: `phone_digits`" in text and "Capacity at tau = 0.9 (`phone_digits`)" in text
    assert "| phone_digit_share | phone_digits | judge | write_s |" in text and "| 0.800 |" in text


def test_report_of_rows_without_a_declared_metric_takes_the_configs_first(tmp_path):
    import yaml

    rows = [{"key": str(n), "size": n, "entries": n, "rank": 1, "parameters": 100, "examples": n, "epochs": 3,
             "recall": 1.0, "tokens": 10, "phone_digit_share": 0.95, "phone_digits": 0.5, "write_s": 1.0}
            for n in (2, 4)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(LoramemError, match="several scores.*phone_digit_share, phone_digits"):
        write_report(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"metrics": ["phone_digits", "phone_digit_share"]}))
    text = write_report(tmp_path).read_text()
    assert "score: `phone_digits`" in text and "| 1 | 100 | - | - | - | 2 | 2 of 4 |" in text


def test_only_picks_a_lora_variant_of_the_placements():
    from loramem.bench.experiment import select

    config = ExperimentConfig.from_dict({"name": "v", "dataset": {"name": "phonebook"}, "sizes": [2], "ranks": [1, 2],
                                         "placements": [{"target_modules": "attention", "variant": v}
                                                        for v in ("lora", "rslora", "pissa")]})
    picked = select(config.runs(), {"variant": {"pissa"}, "rank": {"1"}})
    assert [(r.rank, r.train_config().variant) for r in picked] == [(1, "pissa")]
    assert len(select(config.runs(), {"variant": {"lora", "rslora"}})) == 4
    with pytest.raises(LoramemError, match=r"'variant': \['lora', 'pissa', 'rslora'\]"):
        select(config.runs(), {"variant": {"dora"}})
