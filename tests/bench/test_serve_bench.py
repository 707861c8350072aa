"""`bench serve` on the tiny model: both rounds run, every answer is checked for its own memory."""

from conftest import FAST_TRAIN
from loramem.bench.serve import run_serve_bench
from loramem.training import TrainConfig


def test_serve_bench_rounds(tmp_path, tiny_model_dir):
    r = run_serve_bench(tmp_path / "store", model=str(tiny_model_dir), per_client=1,
                        config=TrainConfig(**{**FAST_TRAIN, "epochs": 300}), log=lambda m: None)
    assert r["requests_1"] == r["requests_8"] == 8
    assert r["requests_per_s_8"] > 0 and r["p50_ms_1"] > 0
    assert r["cross_talk_8"] == 0 and r["correct_8"] == r["correct_1"] == 1.0
    assert r["rows_per_step_1"] == 1 and r["rows_per_step_8"] >= 1 and r["speedup"] > 0 and r["p50_ratio"] > 0
    assert r["step_ms_8"] > 0 and r["prefill_ms_8"] > 0 and r["rows_per_prefill_1"] == 1
    assert 0 < r["engine_busy_8"] <= 1 and r["hardware"]
