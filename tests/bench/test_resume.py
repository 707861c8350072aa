"""The resume helper: settings saved beside results, a folder of other settings refused, reused memories checked."""

import json

import pytest

from conftest import FAST_TRAIN
from loramem.bench.resume import check_reused, claim_folder, differences, settings_key
from loramem.errors import LoramemError
from loramem.training import TrainConfig


def test_settings_are_saved_once_and_other_settings_refused_by_name(tmp_path):
    settings = {"rank": 4, "training": {"epochs": 20, "lr": 0.002}, "files": ("a.csv",), "judge": {"api_key": "s3"}}
    assert claim_folder(tmp_path / "out", settings) == {"rank": 4, "training": {"epochs": 20, "lr": 0.002},
                                                        "files": ["a.csv"], "judge": {}}
    assert "s3" not in (tmp_path / "out" / "settings.json").read_text()  # an API key is never saved
    claim_folder(tmp_path / "out", {**settings, "judge": {"api_key": "other"}})  # the same settings: resumes
    with pytest.raises(LoramemError, match=r"saved -> asked: rank: 4 -> 8; training\.epochs: 20 -> 40"):
        claim_folder(tmp_path / "out", {**settings, "rank": 8, "training": {"epochs": 40, "lr": 0.002}})
    assert differences({"a": 1}, {"a": 1, "b": 2}) == ["b: (not set) -> 2"]
    assert settings_key({"a": 1, "b": [1, 2]}) == settings_key({"b": (1, 2), "a": 1}) != settings_key({"a": 2})


def test_results_without_saved_settings_are_not_resumed(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"key": "x"}) + "\n")
    with pytest.raises(LoramemError, match="holds results \\(results.jsonl\\) but no settings.json"):
        claim_folder(tmp_path, {"rank": 4}, results=[tmp_path / "results.jsonl"])
    claim_folder(tmp_path, {"rank": 4}, results=[tmp_path / "kv-results.jsonl"], filename="kv-settings.json")


def test_a_memory_written_with_other_settings_is_not_reused(tmp_path, tiny_base, facts_jsonl):
    from loramem import Memory

    mem = Memory(store=tmp_path / "store", base=tiny_base, progress=False)
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 1})
    record = mem.write([facts_jsonl], name="facts", config=config).record
    check_reused(record, {**vars(config), "examples": 3})
    with pytest.raises(LoramemError, match=r"memory 'facts' in .* written with other settings.*rank: 8 -> 2"):
        check_reused(record, {**vars(TrainConfig(**{**FAST_TRAIN, "epochs": 1, "rank": 2})), "examples": 3},
                     tmp_path)
    with pytest.raises(LoramemError, match=r"examples: 3 -> 4"):
        check_reused(record, {**vars(config), "examples": 4})
