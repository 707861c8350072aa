"""`write --ray`: documents written as Ray tasks on a local Ray cluster that the test starts."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loramem import Memory

ray = pytest.importorskip("ray")
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats", "--object-store-memory=100000000"], check=True, env=env,
                   capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_write_many_documents_as_ray_tasks(cluster, tmp_path, tiny_model_dir):
    facts = {"ada": ("What is the phone number of Ada Byron?", "555-010-1234"),
             "alan": ("What is the phone number of Alan Turing?", "555-867-5309")}
    paths = []
    for stem, (q, a) in facts.items():
        paths.append(tmp_path / f"{stem}.jsonl")
        paths[-1].write_text(json.dumps({"question": q, "answer": a}) + "\n")
    paths.append(tmp_path / "broken.jsonl")
    paths[-1].write_text('{"question": "no answer here"}\n')
    store = tmp_path / "store"
    run = subprocess.run(
        [str(BIN / "loramem"), "write", *map(str, paths), "--ray", "--address", cluster, "--collection", "people",
         "--store", str(store), "--model", str(tiny_model_dir), "--epochs", "200", "--lr", "1e-2"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 1, run.stderr  # one document failed ...
    assert "failed people-broken" in run.stderr
    mem = Memory(store=store, model=str(tiny_model_dir), progress=False)
    assert sorted(mem.store.names("people")) == ["people-ada", "people-alan"]  # ... the others landed
    for stem, (q, a) in facts.items():
        assert mem.ask(q, memories=[f"people-{stem}"]).answer == a
