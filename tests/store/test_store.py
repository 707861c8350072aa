import os
import sqlite3
import time

import pytest

from loramem.errors import LoramemError, UnknownMemoryError
from loramem.store import MemoryRecord, MemoryStore, folders, validate_name


def record(name: str) -> MemoryRecord:
    return MemoryRecord(
        name=name, folder="", source_hash="h", sources=["a.txt"], base_model="m", base_fingerprint="f",
        rank=4, formats=["qa"], examples=1, tokens=10, parameters=100, recall=1.0, created="now",
        document="doc", config={"lr": 0.1},
    )


def staged_adapter(store: MemoryStore):
    ctx = store.staging()
    folder = ctx.__enter__()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    return ctx, folder


def test_commit_list_get_remove(tmp_path):
    store = MemoryStore(tmp_path / "s")
    ctx, folder = staged_adapter(store)
    store.commit(folder, record("facts"))
    ctx.__exit__(None, None, None)
    (got,) = store.list()
    assert got.name == "facts" and got.config == {"lr": 0.1} and got.document == "doc"
    assert (store.adapter_path(got) / "adapter_config.json").is_file()
    assert not any((tmp_path / "s" / ".staging").iterdir())
    store.remove("facts")
    assert store.list() == [] and not store.adapter_path(got).exists()
    with pytest.raises(UnknownMemoryError, match="store is empty"):
        store.get("facts")


def test_duplicate_refused_unless_replace(tmp_path):
    store = MemoryStore(tmp_path)
    _, folder = staged_adapter(store)
    first = store.commit(folder, record("facts"))
    with pytest.raises(LoramemError, match="--replace"):
        store.check_writable_name("facts", replace=False)
    _, folder = staged_adapter(store)
    with pytest.raises(LoramemError, match="already exists"):
        store.commit(folder, record("facts"))
    assert len(list((tmp_path / "adapters").iterdir())) == 1  # the refused folder was not kept
    _, folder = staged_adapter(store)
    (folder / "adapter_model.safetensors").write_bytes(b"y")
    second = store.commit(folder, record("facts"), replace=True)
    assert second.folder != first.folder and second.version == 2
    assert (tmp_path / first.folder).exists()  # the replaced version is kept until gc
    assert [r.name for r in store.list()] == ["facts"]
    store.gc()
    assert not (tmp_path / first.folder).exists()


def test_commit_refuses_incomplete_adapter(tmp_path):
    store = MemoryStore(tmp_path)
    with store.staging() as folder:
        (folder / "adapter_config.json").write_text("{}")
        with pytest.raises(LoramemError, match="adapter_model.safetensors"):
            store.commit(folder, record("facts"))
    assert store.list() == []


@pytest.mark.parametrize("name", ["a/b", "../x", "a..b", "", ".hidden", "x" * 129, "a b", "a\\b"])
def test_bad_names(name):
    with pytest.raises(LoramemError, match="invalid memory name"):
        validate_name(name)


def test_good_names():
    for name in ["facts", "pb-30", "paper_2603.01097", "A1"]:
        assert validate_name(name) == name


def test_leftovers_of_killed_writes_are_collected_and_unknown_folders_kept(tmp_path):
    store = MemoryStore(tmp_path)  # makes the store folders
    _, folder = staged_adapter(store)
    store.commit(folder, record("facts"))
    dead_staging = tmp_path / ".staging" / "999999999-abc"
    dead_staging.mkdir()
    live_staging = tmp_path / ".staging" / f"{os.getpid()}-abc"
    live_staging.mkdir()
    unknown = tmp_path / "adapters" / "unknown"  # never pinned nor listed: not ours to delete
    unknown.mkdir()
    old = time.time() - 7200
    os.utime(unknown, (old, old))
    killed = tmp_path / "adapters" / "killed"  # a commit pinned it, renamed it in, and died
    killed.mkdir()
    live = tmp_path / "adapters" / "live"  # a commit under way in this (live) process
    live.mkdir()
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:
        db.execute("INSERT INTO pins VALUES ('t1', 'adapters/killed', '999999999:1', 0)")
        db.execute("INSERT INTO pins VALUES ('t2', 'adapters/live', ?, 0)", (folders.this_process(),))
    db.close()
    MemoryStore(tmp_path)
    assert not dead_staging.exists() and live_staging.exists()
    assert unknown.exists() and live.exists() and not killed.exists()
    assert [r.name for r in MemoryStore(tmp_path).list()] == ["facts"]


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LoramemError, match="cannot create store"):
        MemoryStore(blocker / "store")


def test_corrupt_catalogue(tmp_path):
    (tmp_path / "catalogue.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LoramemError, match="cannot open catalogue"):
        MemoryStore(tmp_path)


def test_catalogue_is_plain_sqlite(tmp_path):
    store = MemoryStore(tmp_path)
    _, folder = staged_adapter(store)
    store.commit(folder, record("facts"))
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:
        assert db.execute("SELECT name, rank, recall FROM memories").fetchall() == [("facts", 4, 1.0)]


@pytest.mark.parametrize("column", ["config", "formats", "collection", "recall"])
def test_a_store_from_an_older_version_gains_columns_that_read_back(tmp_path, column):
    store = MemoryStore(tmp_path)
    _, folder = staged_adapter(store)
    store.commit(folder, record("facts"))
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:  # as an older version left it
        db.execute("DROP INDEX memories_by_collection")
        db.execute(f"ALTER TABLE memories DROP COLUMN {column}")
    db.close()
    (got,) = MemoryStore(tmp_path).list()
    with sqlite3.connect(tmp_path / "catalogue.sqlite") as db:  # listing a collection reads an index again
        plan = " ".join(str(r) for r in db.execute("EXPLAIN QUERY PLAN SELECT name FROM memories WHERE collection = 'c'"))
    db.close()
    assert "memories_by_collection" in plan
    expected = {"config": {}, "formats": [], "collection": "", "recall": 0.0}[column]
    assert getattr(got, column) == expected


def test_index_only_memories_are_listed_with_their_embeddings_in_one_go(tmp_path):
    import numpy as np

    from loramem.routing.index import MemoryIndex

    store = MemoryStore(tmp_path / "s")
    before = store.generation()
    vectors = np.eye(2, 4, dtype=np.float32)
    store.add_index_only([(record("a"), MemoryIndex(["passage", "question"], ["x", "y?"], vectors)), (record("b"), None)])
    assert store.names() == ["a", "b"] and store.get("a").config == {"lr": 0.1}
    embeddings = store.embeddings()
    assert list(embeddings) == ["a"] and embeddings["a"].dtype == np.float16 and (embeddings["a"] == vectors).all()
    assert store.index_items() == {"a": [("passage", "x"), ("question", "y?")]}
    assert store.generation() == before + 1  # routers rebuild their indexes
    with pytest.raises(sqlite3.IntegrityError):  # one transaction: a duplicate lists nothing
        store.add_index_only([(record("c"), None), (record("a"), None)])
    assert store.names() == ["a", "b"]
