"""`loramem update`, `log`, `rollback` and `gc` as a user runs them: one-line errors, nothing changed
by a bad update, and a killed update leaving the previous version listed and answering."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from test_cli import run

ADA = "What is the phone number of Ada Byron?"


@pytest.fixture
def cli(capsys, tmp_path, tiny_model_dir):
    store = str(tmp_path / "store")

    def call(*args: str):
        model = ["--model", str(tiny_model_dir)] if args[0] in ("write", "ask", "update") else []
        return run(capsys, *args, "--store", store, *model)

    return call


def jsonl(path, *pairs):
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return str(path)


def test_update_log_rollback_gc(cli, tmp_path, facts_jsonl):
    assert cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "80", "--lr", "1e-2", "--precision", "fp32")[0] == 0
    change = jsonl(tmp_path / "change.jsonl", (ADA, "555-777-0001"))
    code, out, _ = cli("update", "facts", change)
    assert code == 0 and "updated facts to version 2 (from 1) by replay: superseded 1" in " ".join(out.split())
    assert "read-back recall: 100.0%" in out
    gone = jsonl(tmp_path / "gone.jsonl", ("What is the phone number of Grace Hopper?", "555-246-8100"))
    assert cli("update", "facts", "--remove", gone, "--method", "retrain")[0] == 0
    code, out, _ = cli("log", "facts", "--json")
    log = json.loads(out)
    assert [(v["version"], v["parent"], v["current"]) for v in log] == [(1, None, False), (2, 1, False), (3, 2, True)]
    assert log[2]["change"]["removed"] == 1 and log[2]["change"]["method"] == "retrain"
    code, out, _ = cli("log", "facts")
    assert code == 0 and "* 3" in out and "(replay)" in out and "superseded 1" in out and "(retrain)" in out
    assert json.loads(cli("ask", ADA, "--memory", "facts@1", "--json", "--max-new-tokens", "12")[1])["answer"] == "555-010-1234"
    assert "at version 2 again" in cli("rollback", "facts", "2")[1]
    reply = json.loads(cli("ask", ADA, "--memory", "facts", "--json", "--max-new-tokens", "12")[1])
    assert reply["answer"] == "555-777-0001" and reply["versions"] == [2]
    assert "removed 2 old versions" in cli("gc")[1]
    assert [v["version"] for v in json.loads(cli("log", "facts", "--json")[1])] == [2]


def test_bad_updates_are_one_line_errors_and_change_nothing(cli, tmp_path, facts_jsonl):
    assert cli("write", str(facts_jsonl), "--name", "facts", "--epochs", "1")[0] == 0
    contradicting = jsonl(tmp_path / "c.jsonl", (ADA, "1"), (ADA, "2"))
    not_held = jsonl(tmp_path / "n.jsonl", ("Who is Zed?", "1"))
    cases = [(("update", "nope", str(facts_jsonl)), "no memory named 'nope'"),
             (("update", "facts", contradicting), "contradicts itself"),
             (("update", "facts", "--remove", not_held), "holds no record 'Who is Zed?'"),
             (("update", "facts", str(facts_jsonl)), "changes nothing"),
             (("update", "facts"), "give files"),
             (("rollback", "facts", "5"), "has no version 5"),
             (("gc", "nope"), "no memory named 'nope'")]
    for args, message in cases:
        code, _, err = cli(*args)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert [v["version"] for v in json.loads(cli("log", "facts", "--json")[1])] == [1]


def test_killed_update_leaves_the_previous_version_listed(tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    exe = [sys.executable, "-m", "loramem.cli"]
    common = ["--store", str(store), "--model", str(tiny_model_dir)]
    facts = jsonl(tmp_path / "facts.jsonl", (ADA, "555-010-1234"))
    subprocess.run(exe + ["write", facts, "--name", "facts", "--epochs", "1", *common], check=True, capture_output=True)
    big = jsonl(tmp_path / "big.jsonl", *[(f"Code of item {i}?", f"{i * 7919 % 10000:04d}") for i in range(40)])
    for delay in (1.0, 3.0, 5.0):
        proc = subprocess.Popen(exe + ["update", "facts", big, *common], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out = subprocess.run(exe + ["log", "facts", "--json", "--store", str(store)], check=True, capture_output=True,
                             text=True)
        log = json.loads(out.stdout)
        current = next(v for v in log if v["current"])
        shown = json.loads(subprocess.run(exe + ["show", "facts", "--store", str(store)], check=True,
                                          capture_output=True, text=True).stdout)
        assert shown["version"] == current["version"]
        assert (tmp_path / "store" / shown["folder"] / "adapter_model.safetensors").is_file()
