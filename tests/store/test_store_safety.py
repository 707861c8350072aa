"""What the store must never lose: folders when the catalogue is lost, folders a commit reuses while
another process collects garbage; and that a store this user cannot write can still be read."""

import os
import subprocess
import time

import numpy as np
import pytest

from loramem.errors import LoramemError
from loramem.routing.index import MemoryIndex
from loramem.store import MemoryRecord, MemoryStore
from loramem.store.recover import recover


def record(name: str) -> MemoryRecord:
    return MemoryRecord(
        name=name, folder="", source_hash="h", sources=["a.jsonl"], base_model="m", base_fingerprint="f",
        rank=4, formats=["record"], examples=1, tokens=10, parameters=100, recall=1.0, created="now",
        document="doc", config={"lr": 0.1},
    )


def commit(store: MemoryStore, name: str, content: bytes, **kwargs) -> MemoryRecord:
    with store.staging() as folder:
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(content)
        return store.commit(folder, record(name), **kwargs)


def age_folders(path, seconds=7200):
    then = time.time() - seconds
    for folder in (path / "adapters").iterdir():
        os.utime(folder, (then, then))


def test_a_lost_catalogue_is_refused_and_nothing_deleted_then_recovered(tmp_path):
    store = MemoryStore(tmp_path)
    emb = np.arange(8, dtype=np.float32).reshape(2, 4)
    commit(store, "phones", b"v1", index=MemoryIndex(["passage"] * 2, ["a b", "c d"], emb))
    commit(store, "phones", b"v2", replace=True, index=MemoryIndex(["passage", "question"], ["e f", "g? h"], emb + 1))
    commit(store, "phones", b"v3", replace=True)
    store.rollback("phones", 2)
    commit(store, "notes", b"n1")
    commit(store, "gone", b"v1")  # shares phones@1's folder, then removed: must not come back
    store.remove("gone")
    commit(store, "dropped", b"d1")
    commit(store, "dropped", b"d2", replace=True)
    commit(store, "twin", b"d1")  # keeps dropped@1's folder alive through the gc below
    store.gc("dropped")
    before = sorted(p.name for p in (tmp_path / "adapters").iterdir())
    age_folders(tmp_path)
    catalogue = tmp_path / "catalogue.sqlite"
    for lose in ("empty", "missing"):
        catalogue.write_bytes(b"") if lose == "empty" else catalogue.unlink(missing_ok=True)
        for _ in range(2):  # a second open must not find a fresh catalogue either
            with pytest.raises(LoramemError, match=f"catalogue is {lose}.*loramem recover"):
                MemoryStore(tmp_path)
        assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == before
    report = recover(tmp_path)
    assert sorted(report.memories) == ["dropped", "notes", "phones", "twin"] and not report.legacy
    store = MemoryStore(tmp_path)
    assert store.get("phones").version == 2  # the rollback was the last word
    assert [v.version for v in store.versions("phones")] == [1, 2, 3]
    assert [v.version for v in store.versions("dropped")] == [2]  # gc dropped version 1
    assert (store.embeddings()["phones"] == (emb + 1).astype(np.float16)).all()
    assert store.index_items()["phones"] == [("passage", "e f"), ("question", "g? h")]
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == before
    for r in store.list():
        assert (store.adapter_path(r) / "adapter_model.safetensors").is_file()


def test_a_new_catalogue_beside_folders_is_refused_and_recover_keeps_what_is_listed(tmp_path):
    store = MemoryStore(tmp_path)
    commit(store, "a", b"a")
    (tmp_path / "catalogue.sqlite").unlink()
    import sqlite3

    sqlite3.connect(tmp_path / "catalogue.sqlite").executescript("CREATE TABLE memories (name TEXT);").close()
    with pytest.raises(LoramemError, match="catalogue is new"):
        MemoryStore(tmp_path)
    (tmp_path / "catalogue.sqlite").unlink()
    legacy = tmp_path / "adapters" / "0123456789abcdef"  # from before folders kept listings
    legacy.mkdir()
    (legacy / "adapter_config.json").write_text('{"r": 2, "lora_alpha": 4, "base_model_name_or_path": "m"}')
    (legacy / "adapter_model.safetensors").write_bytes(b"w")
    report = recover(tmp_path)
    assert report.memories == ["a"] and report.legacy == ["recovered-0123456789ab"]
    assert MemoryStore(tmp_path).get("recovered-0123456789ab").rank == 2
    assert recover(tmp_path).versions == 0  # a second recover finds nothing new


def test_commits_that_reuse_folders_never_lose_them_to_a_concurrent_gc(tmp_path):
    """One process commits content identical to an older version's folder, with replace, in a loop;
    another runs gc on the memory: `bench faults`' race case, as it runs there."""
    from loramem.bench.faults import race_case

    race = race_case(tmp_path, 6, log=print)
    assert race["commits"] > 20 and race["gc_runs"] > 20
    assert race["missing_seen"] == 0 and race["lost"] == 0 and race["tracebacks"] == 0
    store = MemoryStore(tmp_path)
    for v in store.versions("race"):
        assert (store.adapter_path(v.record) / "adapter_model.safetensors").is_file()
    assert not list((tmp_path / ".trash").iterdir())


def _read_only_view(source, target, monkeypatch) -> bool:
    """A real read-only bind mount of `source` at `target` (root can mount); else `target` is `source`
    with os.access saying no (as root, permission bits alone stop nothing). True for the real one."""
    target.mkdir()
    if subprocess.run(["mount", "-o", "bind,ro", str(source), str(target)], capture_output=True).returncode == 0:
        return True
    target.rmdir()
    target.symlink_to(source)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    return False


def test_a_read_only_store_can_be_listed_but_not_changed(tmp_path, monkeypatch):
    store = MemoryStore(tmp_path / "s")
    commit(store, "facts", b"w")
    mounted = _read_only_view(tmp_path / "s", tmp_path / "ro", monkeypatch)
    try:
        readonly = MemoryStore(tmp_path / "ro")
        assert readonly.readonly and [r.name for r in readonly.list()] == ["facts"]
        assert readonly.get("facts").version == 1 and readonly.versions("facts")[0].current
        for change in (readonly.gc, lambda: readonly.check_writable_name("more", False), readonly.staging().__enter__):
            with pytest.raises(LoramemError, match="read-only"):
                change()
        with pytest.raises(LoramemError, match="read-only"):
            readonly.remove("facts")
    finally:
        if mounted:
            subprocess.run(["umount", str(tmp_path / "ro")], check=True)
    assert MemoryStore(tmp_path / "s").names() == ["facts"]
