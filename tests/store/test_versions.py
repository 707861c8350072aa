"""Versions in the store: numbered, content-addressed, rolled back, collected, migrated."""

import sqlite3

import pytest

from loramem.errors import LoramemError, UnknownMemoryError
from loramem.store import MemoryStore
from store.test_store import record


def commit(store: MemoryStore, name: str, content: bytes, **kwargs):
    with store.staging() as folder:
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(content)
        return store.commit(folder, record(name), **kwargs)


def test_every_write_and_update_is_a_numbered_version_kept_until_gc(tmp_path):
    store = MemoryStore(tmp_path)
    first = commit(store, "facts", b"one")
    second = commit(store, "facts", b"two", parent=1, change={"added": 2})
    third = commit(store, "facts", b"three", replace=True)
    assert (first.version, second.version, third.version) == (1, 2, 3)
    assert store.get("facts").version == 3 and store.get("facts@1").folder == first.folder
    assert all((tmp_path / r.folder).is_dir() for r in (first, second, third))
    log = store.versions("facts")
    assert [(v.version, v.parent, v.change["kind"], v.current) for v in log] == [
        (1, None, "write", False), (2, 1, "update", False), (3, None, "rewrite", True)]
    assert log[1].change["added"] == 2
    assert store.exists("facts@2") and not store.exists("facts@4")
    assert store.gc("facts", keep=1) == (1, 1)  # version 1 goes, 2 is the newest other one
    assert [v.version for v in store.versions("facts")] == [2, 3] and not (tmp_path / first.folder).exists()
    store.remove("facts")
    assert not (tmp_path / second.folder).exists() and not (tmp_path / third.folder).exists()
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM versions").fetchone() == (0,)


def test_identical_content_shares_one_folder_and_gc_keeps_what_a_version_uses(tmp_path):
    store = MemoryStore(tmp_path)
    a = commit(store, "facts", b"same")
    b = commit(store, "facts", b"same", parent=1)
    assert a.folder == b.folder and b.version == 2
    assert store.gc() == (1, 0)  # version 1 dropped, its folder still used by version 2
    assert (tmp_path / b.folder).is_dir()


def test_rollback_makes_an_old_version_current_and_the_next_update_continues_numbering(tmp_path):
    store = MemoryStore(tmp_path)
    commit(store, "facts", b"one")
    commit(store, "facts", b"two", parent=1)
    before = store.generation()
    assert store.rollback("facts", 1).version == 1
    assert store.get("facts").version == 1 and store.generation() == before + 1
    assert commit(store, "facts", b"three", parent=1).version == 3
    with pytest.raises(UnknownMemoryError, match="no version 7; its versions: 1, 2, 3"):
        store.rollback("facts", 7)
    with pytest.raises(UnknownMemoryError, match="no version 7"):
        store.get("facts@7")


def test_an_update_from_a_stale_version_is_refused_and_lists_nothing(tmp_path):
    store = MemoryStore(tmp_path)
    commit(store, "facts", b"one")
    commit(store, "facts", b"two", parent=1)
    with pytest.raises(LoramemError, match="is at version 2 since this update started from version 1"):
        commit(store, "facts", b"late", parent=1)
    assert [v.version for v in store.versions("facts")] == [1, 2]
    assert len(list((tmp_path / "adapters").iterdir())) == 2  # the refused folder is gone


def test_a_store_from_before_versions_lists_each_memory_as_version_1(tmp_path):
    store = MemoryStore(tmp_path)
    commit(store, "facts", b"one")
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:  # as an older loramem left it
        db.execute("DROP TABLE versions")
        db.execute("ALTER TABLE memories DROP COLUMN version")
    db.close()
    again = MemoryStore(tmp_path)
    (v,) = again.versions("facts")
    assert v.version == 1 and v.current and again.get("facts@1").name == "facts"
    assert commit(again, "facts", b"two", parent=1).version == 2
