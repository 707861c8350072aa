"""`bench faults`: its cases find what they look for (a lost folder counts as lost, a refused lost
catalogue does not) and run on the tiny model; the whole run is `loramem bench faults`."""

import random

from loramem.bench import faults
from loramem.bench.tables import faults_table
from loramem.store import MemoryStore


def test_audit_counts_a_listed_version_whose_folder_is_gone(tmp_path):
    store = tmp_path / "store"
    proc, pipe = faults._child(faults.children.race, store, "commit", 1.0)
    assert faults._receive(pipe, 60)[0] == "done"
    proc.join()
    s = MemoryStore(store)
    assert faults.audit(store)["lost"] == 0
    folder = s.get("race").folder
    (store / folder / "adapter_model.safetensors").unlink()
    sharing = [v for v in s.versions("race") if v.record.folder == folder]  # same content, one folder
    assert faults.audit(store)["lost"] == len(sharing) >= 1


def test_race_and_lost_catalogue_cases_lose_nothing(tmp_path):
    race = faults.race_case(tmp_path / "race", 1, log=print)  # the race itself is tested in tests/store
    assert race["commits"] > 5 and race["gc_runs"] > 5
    assert race["lost"] == 0 and race["tracebacks"] == 0
    catalogue = faults.catalogue_case(tmp_path / "race", tmp_path)
    assert catalogue["refused"] == 2 and catalogue["folders_kept"] and catalogue["recovered"] == ["race"]
    assert catalogue["lost"] == 0 and catalogue["tracebacks"] == 0


def test_kills_on_the_tiny_model(tmp_path, tiny_model_dir):
    result = faults.kill_case(tmp_path / "store", str(tiny_model_dir), 2, random.Random(0), log=print)
    assert result["kills"] == 2 and result["lost"] == 0 and result["tracebacks"] == 0
    assert len(result["answers_after"]) == 3
    table = faults_table({"kills": 2, "lost": 0, "tracebacks": 0, "cross_site_accepted": 0, "cases": {
        "kills": result, "race": {"commits": 1, "gc_runs": 1, "lost": 0, "tracebacks": 0},
        "catalogue": {"refused": 2, "recovered": ["facts"], "lost": 0, "tracebacks": 0},
        "disk_full": {"skipped": "no tmpfs"}, "cross_site": {"attacks": [], "accepted": 0, "tracebacks": 0}}})
    assert table.row_count == 5
