"""The command line as a user runs it: one-line errors, non-zero exits, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from loramem.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    argv = sys.argv
    sys.argv = ["loramem", *args]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli(capsys, tmp_path, tiny_model_dir):
    store = str(tmp_path / "store")

    def call(*args: str):
        model = args[0] in ("write", "ask", "synth")  # the commands that load a model
        extra = ["--store", store] + (["--model", str(tiny_model_dir)] if model else [])
        return run(capsys, *args, *extra)

    return call


def test_write_ask_ls_show_rm(cli, facts_jsonl):
    code, out, _ = cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "2", "--rank", "4")
    assert code == 0 and "wrote facts" in out and "read-back recall" in out
    code, out, _ = cli("ask", "What is the phone number of Ada Byron?", "--memory", "facts", "--json")
    reply = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and reply["memories"] == ["facts"] and reply["mode"] == "parametric" and "answer" in reply
    code, out, _ = cli("ls", "--json")
    (listed,) = json.loads(out)
    assert listed["name"] == "facts" and listed["rank"] == 4 and "document" not in listed
    code, out, _ = cli("show", "facts")
    shown = json.loads(out)
    assert os.path.isfile(os.path.join(shown["path"], "adapter_model.safetensors"))
    assert cli("rm", "facts")[0] == 0
    assert json.loads(cli("ls", "--json")[1]) == []


def _bad_inputs(tmp_path, facts_jsonl):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02")
    (tmp_path / "latin.md").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "noqa.csv").write_text("name,phone\nx,y\n")
    (tmp_path / "noqa.jsonl").write_text('{"q": 1}\n')
    (tmp_path / "doc.md").write_text("The Velmont Observatory opened in 1887 on the northern ridge.")
    (tmp_path / "wide.csv").write_text("question,answer\nWho?," + "z" * 200_000 + "\n")
    (tmp_path / "deep.jsonl").write_text('{"question": "q", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (tmp_path / "long.jsonl").write_text(json.dumps({"question": "Who?", "answer": "x " * 10**5}) + "\n")
    f = str(facts_jsonl)
    return [
        (["write", str(tmp_path / "missing.txt")], "no such file"),
        (["write", str(tmp_path / "empty.txt")], "empty"),
        (["write", str(tmp_path / "bin.txt")], "binary"),
        (["write", str(tmp_path / "latin.md")], "UTF-8"),
        (["write", str(tmp_path / "noqa.csv")], "'question' and 'answer'"),
        (["write", str(tmp_path / "noqa.jsonl")], "missing or empty field"),
        (["write", f, "--rank", "0"], "rank must be a positive"),
        (["write", f, "--name", "../etc"], "invalid memory name"),
        (["write", f, "--name", "a/b"], "invalid memory name"),
        (["write", f, "--name", ""], "invalid memory name ''"),
        (["write", f, "--collection", ""], "invalid memory name ''"),
        (["write", str(tmp_path / "wide.csv")], "wide.csv:2: cannot read this CSV row (field larger than field limit"),
        (["write", str(tmp_path / "deep.jsonl")], "deep.jsonl:1: JSON nested too deeply to read"),
        (["write", str(tmp_path / "long.jsonl")], "long.jsonl:1: the record is too long"),
        (["write", str(tmp_path / "long.jsonl"), "--max-record-tokens", "20000"], "tokens, over the limit of 20,000 tokens"),
        (["write", str(tmp_path / "doc.md"), "--format", "qa:40,sumary:8"], "unknown format 'sumary'"),
        (["synth", str(tmp_path / "doc.md"), "--format", "raw:2"], "raw takes no count"),
        (["write", str(tmp_path / "doc.md"), "--layers", "middle"], "cannot parse layers"),
        (["write", str(tmp_path / "doc.md"), "--objective", "telepathy"], "unknown objective"),
        (["write", str(tmp_path / "doc.md"), "--generator", "gpt-9"], "unknown generator"),
        (["write", str(tmp_path / "doc.md"), "--generator", "http://127.0.0.1:9/v1", "--generator-model", "m"],
         "gave up after 3 attempts"),
        (["ask", "Who?", "--memory", "ghost"], "no memory named 'ghost'"),
        (["show", "ghost"], "no memory named 'ghost'"),
        (["rm", "ghost"], "no memory named 'ghost'"),
    ]


def test_bad_input_gives_one_line_error_and_stores_nothing(cli, tmp_path, facts_jsonl):
    for args, message in _bad_inputs(tmp_path, facts_jsonl):
        code, out, err = cli(*args)
        err = err.rsplit("\r", 1)[-1]  # what a terminal shows: progress bars redraw with carriage returns
        assert code == 1, args
        assert err.startswith("error:") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert json.loads(cli("ls", "--json")[1]) == []


def test_duplicate_name_refused_unless_replace(cli, facts_jsonl):
    assert cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "1")[0] == 0
    code, _, err = cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "1")
    assert code == 1 and "--replace" in err
    assert cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "1", "--replace")[0] == 0


def test_unwritable_store(capsys, tmp_path, facts_jsonl):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "ls", "--store", str(blocker / "store"))
    assert code == 1 and "cannot create store" in err


def test_killed_write_leaves_a_consistent_store(tmp_path, tiny_model_dir, facts_jsonl):
    """Kill `loramem write` at several moments; every listed memory must keep its files."""
    store = tmp_path / "store"
    big = tmp_path / "big.jsonl"
    rows = [{"question": f"Code of item {i}?", "answer": f"{i * 7919 % 10000:04d}"} for i in range(40)]
    big.write_text("".join(json.dumps(r) + "\n" for r in rows))
    exe = [sys.executable, "-m", "loramem.cli"]
    common = ["--store", str(store), "--model", str(tiny_model_dir)]
    subprocess.run(exe + ["write", str(facts_jsonl), "--name", "keep", "--epochs", "1", *common], check=True, capture_output=True)
    for delay in (0.5, 2.0, 3.5, 5.0):
        proc = subprocess.Popen(
            exe + ["write", str(big), "--name", "big", "--epochs", "3", "--replace", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(store / "catalogue.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = db.execute("SELECT name, folder FROM memories").fetchall()
        assert "keep" in {name for name, _ in rows}
        for name, folder in rows:
            assert (store / folder / "adapter_config.json").is_file(), name
            assert (store / folder / "adapter_model.safetensors").is_file(), name
    out = subprocess.run(exe + ["ls", "--json", "--store", str(store)], check=True, capture_output=True, text=True)
    assert "keep" in {r["name"] for r in json.loads(out.stdout)}
    assert not [p for p in (store / ".staging").iterdir()]  # dead writers' staging was collected


def test_unknown_device(cli, facts_jsonl):
    code, _, err = cli("ask", "Who?", "--device", "tpu9")
    assert code == 1 and "unknown device" in err


def test_synth_prints_supervision_without_training(cli, tmp_path):
    doc = tmp_path / "velmont.md"
    doc.write_text("# Velmont\n\nThe Velmont Observatory opened in 1887 on the northern ridge. "
                   "Its first director was Edda Falkenrath, who catalogued stars.")
    code, out, err = cli("synth", str(doc), "--format", "cloze,raw", "--json")
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and {r["kind"] for r in rows} == {"cloze", "raw"}
    assert all(set(r) == {"kind", "prompt", "target", "chunk"} and "1887" in r["chunk"] for r in rows)
    assert "examples (cloze 2, raw 1)" in err
    assert json.loads(cli("ls", "--json")[1]) == []


def test_write_records_placement_and_summarizes(cli, tmp_path):
    doc = tmp_path / "velmont.md"
    doc.write_text("The Velmont Observatory opened in 1887 on the northern ridge. Its first director was Edda Falkenrath.")
    code, out, _ = cli("write", str(doc), "--format", "cloze", "--layers", "late", "--target-modules", "ffn",
                       "--epochs", "1", "--objective", "next-token")
    assert code == 0 and "wrote velmont: 2 examples (cloze 2)" in out and "parameters" in out
    shown = json.loads(cli("show", "velmont")[1])
    assert shown["placement"] == {"target_modules": "ffn", "layers": [1]}
    assert shown["config"]["objective"] == "next-token" and shown["config"]["format"] == "cloze"


def test_killed_write_resumes_from_its_checkpoint(tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"question": f"Code of item {i}?", "answer": f"{i * 7919 % 10000:04d}"}) + "\n"
                           for i in range(40)))
    args = [sys.executable, "-m", "loramem.cli", "write", str(big), "--name", "big", "--epochs", "60",
            "--store", str(store), "--model", str(tiny_model_dir), "--precision", "fp32"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = store / "checkpoints" / "big.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists()
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resumed after epoch" in done.stdout and not checkpoint.exists()


def test_write_says_which_generator_wrote_the_supervision_and_records_it(cli, tmp_path):
    doc = tmp_path / "velmont.md"
    doc.write_text("The Velmont Observatory opened in 1887 on the northern ridge. Its first director was Edda Falkenrath.")
    code, out, err = cli("write", str(doc), "--format", "qa:1", "--generator", "local", "--epochs", "1")
    err = " ".join(err.split())  # rich wraps long lines
    assert code == 0 and "supervision written by" in err and "(the base model)" in err
    config = json.loads(cli("show", "velmont")[1])["config"]
    assert config["generator"].endswith("(the base model)") and config["generator_spec"] == "local"
    code, _, err = cli("synth", str(doc), "--format", "qa:1", "--generator", "embedded", "--generator-model", "m")
    assert code == 1 and "--generator-model and --generator-key are for URLs" in " ".join(err.split())


def test_a_50_mb_record_is_refused_at_once_in_little_memory(tmp_path, tiny_model_dir):
    """One 50 MB answer once grew `write` past 6 GB in 44 s; it is refused before a model loads."""
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        f.write('{"question": "What is in the archive?", "answer": "')
        f.write("word " * 10 * 2**20)
        f.write('"}\n')
    start = time.perf_counter()
    with (tmp_path / "err.txt").open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "loramem.cli", "write", str(big), "--store",
                                 str(tmp_path / "s"), "--model", str(tiny_model_dir)], stdout=subprocess.DEVNULL, stderr=stderr)
    timer = threading.Timer(120, proc.kill)  # before the bound, it ran for minutes
    timer.start()
    # The peak of the child's own image, sampled: wait4's ru_maxrss also counts the copy of this
    # process that the child was forked from, over 1 GB late in the suite.
    peak_kib = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                status = f.read()
            peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(0.02)
    timer.cancel()
    seconds, err = time.perf_counter() - start, (tmp_path / "err.txt").read_text()
    assert proc.returncode == 1 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "big.jsonl:1: the record is too long: 52,428,8" in err and "--max-record-tokens" in err
    assert 0 < peak_kib < 1536 * 1024, peak_kib  # torch's import and the file, nothing more
    assert seconds < 60, seconds  # a few seconds, most of them importing torch


def one_line(err: str) -> str:
    err = err.rsplit("\r", 1)[-1]  # what a terminal shows: progress bars redraw with carriage returns
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def _dev_full() -> bool:
    return os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.skipif(not _dev_full(), reason="needs /dev/full, where every write fails with ENOSPC")
def test_a_full_disk_during_write_is_one_line_and_lists_nothing(cli, tmp_path, facts_jsonl):
    """The epoch checkpoint is the first file a write puts on disk: there it meets a full disk."""
    checkpoints = tmp_path / "store" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "facts.tmp").symlink_to("/dev/full")  # where the checkpoint is written before its rename
    code, out, err = cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "2")
    assert code == 1 and one_line(err).startswith(f"error: the disk is full (writing {checkpoints / 'facts.pt'}): ")
    assert "free some space and run the command again; the store keeps its last committed state" in err
    assert not (checkpoints / "facts.tmp").exists() and json.loads(cli("ls", "--json")[1]) == []


def _full_sqlite_error() -> sqlite3.OperationalError:
    """The error SQLite raises when a write finds no room: a database capped at its own size."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    try:
        db.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    except sqlite3.OperationalError as e:
        return e
    raise AssertionError("SQLite found room")


@pytest.mark.parametrize("command, error", [
    (["update", "facts", "more.jsonl"], OSError(28, "No space left on device", "/store/.staging/x/adapter.bin")),
    (["rollback", "facts", "1"], _full_sqlite_error()),
    (["update", "facts", "more.jsonl"], RuntimeError("Error while serializing: I/O error: No space left on device (os "
                                                     "error 28)")),
], ids=["update-oserror", "rollback-sqlite", "update-safetensors"])
def test_a_full_disk_during_update_or_rollback_is_one_line(capsys, monkeypatch, command, error):
    class FullDisk:
        def update(self, *args, **kwargs):
            raise error

        rollback = update

    # update opens the Memory in cli/memory.py, rollback the store alone in cli/versions.py
    monkeypatch.setattr("loramem.cli.memory.open_memory", lambda *a, **k: FullDisk())
    monkeypatch.setattr("loramem.cli.versions.open_store", lambda *a, **k: FullDisk())
    code, _, err = run(capsys, *command)
    assert code == 1 and one_line(err).startswith("error: the disk is full")
    assert ("(writing /store/.staging/x/adapter.bin)" in err) == isinstance(error, OSError)


def test_other_errors_are_not_taken_for_a_full_disk(capsys, monkeypatch):
    class Broken:
        def rollback(self, *args):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr("loramem.cli.versions.open_store", lambda *a, **k: Broken())
    with pytest.raises(RuntimeError, match="unexpected pos"):
        run(capsys, "rollback", "facts", "1")
