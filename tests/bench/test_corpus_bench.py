"""`bench corpus` on the tiny model: two tiny PhoneBook sectors, written one by one and batched."""

import json

import pytest
from typer.testing import CliRunner

from conftest import FAST_TRAIN
from loramem.bench.datasets.phonebook import phonebook
from loramem.errors import LoramemError

KEYS = ["memories_per_hour", "memories_per_hour_sequential", "speedup", "recall_min", "recall_min_sequential",
        "supervised_tokens_per_s", "supervised_tokens_per_s_sequential", "mfu", "mfu_sequential"]


@pytest.fixture
def sectors(tmp_path):
    """A data folder holding two 128K-PhoneBook-style sector files of three entries each."""
    folder = tmp_path / "data" / "pb_cf"
    folder.mkdir(parents=True)
    entries = phonebook(6, seed=7)
    for s in range(2):
        rows = [f'"Question: {e.prompt} Answer: {e.target}"' for e in entries[3 * s:3 * s + 3]]
        (folder / f"phonebook_qa_128K_sector_{s:02d}.csv").write_text("text\n" + "\n".join(rows) + "\n")
    return tmp_path / "data"


def test_corpus_bench_reports_both_ways(sectors, tiny_model_dir):
    from loramem.bench.corpus import run_corpus
    from loramem.training import TrainConfig

    results = run_corpus(sectors, partitions=2, entries=2, batch_memories=2, model=str(tiny_model_dir),
                         config=TrainConfig(**FAST_TRAIN), progress=False, log=lambda m: None)
    for key in KEYS:
        assert isinstance(results[key], float) and results[key] > 0, key
    assert results["speedup"] == pytest.approx(results["memories_per_hour"] / results["memories_per_hour_sequential"])
    assert len(results["recalls"]) == len(results["recalls_sequential"]) == 2
    assert results["recall_min"] == min(results["recalls"]) and results["recall_min_sequential"] == 1.0
    assert "cores" in results["hardware"]
    # Each memory trains as alone, to float rounding: near convergence that may move its stop by a few
    # epochs (as fused vs PEFT's unfused LoRA layers do for train_memory), so epochs are not compared.
    assert len(results["epochs"]) == 2 and all(e >= 1 for e in results["epochs"])
    assert (results["partitions"], results["entries"], results["batch_memories"]) == (2, 2, 2)


def test_corpus_bench_command_prints_json(sectors, tiny_model_dir):
    from loramem.cli import app

    result = CliRunner().invoke(app, ["bench", "corpus", "--data", str(sectors), "--partitions", "2", "--entries", "1",
                                      "--precision", "fp32", "--model", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(key in results for key in KEYS) and results["partitions"] == 2


def test_corpus_bench_without_the_sectors_says_where_it_looked(tmp_path):
    from loramem.bench.corpus import run_corpus

    (tmp_path / "pb_cf").mkdir()
    with pytest.raises(LoramemError, match="lacks phonebook_qa_128K_sector_00.csv"):
        run_corpus(tmp_path, partitions=2)
