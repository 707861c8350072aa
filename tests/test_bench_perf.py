"""`bench perf` runs end to end on the tiny model and reports every key the issue asks for."""

import pytest

from conftest import FAST_TRAIN
from loramem.bench.perf import run_perf
from loramem.training import TrainConfig

KEYS = [
    "train_tokens_per_s_baseline", "train_tokens_per_s", "train_speedup", "matmul_peak_flops",
    "train_flops_per_s", "mfu", "verified_write_s_baseline", "verified_write_s", "write_speedup",
    "answer_s_icl", "answer_s_memory", "answer_speedup_vs_icl", "activation_s", "activation_share",
    "write_peak_rss_bytes",
]


def test_perf_reports_every_key(tiny_model_dir):
    results = run_perf(n_train=8, n_write=4, model=str(tiny_model_dir), baseline_budget_s=2,
                       config=TrainConfig(**{**FAST_TRAIN, "epochs": 300}), log=lambda m: None)
    for key in KEYS:
        assert isinstance(results[key], (int, float)) and results[key] > 0, key
    assert results["train_speedup"] == pytest.approx(results["train_tokens_per_s"] / results["train_tokens_per_s_baseline"])
    assert results["verified_write_recall"] >= 0.95
    assert 0 < results["mfu"] < 2
