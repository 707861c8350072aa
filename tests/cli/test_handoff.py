"""`loramem ask` hands its question to a `loramem serve` running on the same store: the same answer
as asking in-process, with no torch loaded by the client; and it answers alone when the announced
server is gone or unreachable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from test_cli_start import PROBE

from loramem.handoff import SERVING_FILE, running_server

HEAVY = ("torch._C", "transformers", "peft")


def cli(*args: str) -> tuple[dict, list[str], str]:
    """Run the CLI in a fresh interpreter: (the --json answer, heavy modules it loaded, stderr)."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    *printed, loaded = done.stdout.strip().splitlines()
    return json.loads(printed[-1]), json.loads(loaded), done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ask_is_answered_by_the_running_server(facts_memory, tiny_model_dir):
    store, question = facts_memory.store.path, "What is the phone number of Ada Byron?"
    expected = facts_memory.ask(question, memories=["facts"]).to_dict()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "loramem.cli", "serve", "--store", str(store), "--model",
                               str(tiny_model_dir), "--port", str(port)], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5).close()
                break
            except OSError:
                assert time.time() < deadline, "the server did not start"
                time.sleep(0.5)
        assert running_server(store)["url"] == f"http://127.0.0.1:{port}/v1"
        answer, loaded, _ = cli("ask", question, "-m", "facts", "--json", "--store", str(store))
        assert loaded == []  # the server answered: the client loaded no model
        assert {k: v for k, v in answer.items() if k != "seconds"} == {k: v for k, v in expected.items() if k != "seconds"}
        # asked for by name, a memory the store lacks is the server's one-line error, as it is locally
        refused = subprocess.run([sys.executable, "-m", "loramem.cli", "ask", question, "-m", "nothing", "--store",
                                  str(store)], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "nothing" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert not (store / SERVING_FILE).exists()  # the server took its entry with it


def test_a_gone_or_unreachable_server_is_passed_over(facts_memory, tiny_model_dir):
    store, question = facts_memory.store.path, "What is the phone number of Ada Byron?"
    expected = facts_memory.ask(question, memories=["facts"]).answer
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    entry = {"url": f"http://127.0.0.1:{free_port()}/v1", "model": str(tiny_model_dir)}
    (store / SERVING_FILE).write_text(json.dumps({**entry, "pid": int(dead.stdout)}))
    assert running_server(store) is None  # its process is gone
    (store / SERVING_FILE).write_text(json.dumps({**entry, "pid": os.getpid()}))  # alive, but nothing listens
    answer, loaded, err = cli("ask", question, "-m", "facts", "--json", "--store", str(store),
                              "--model", str(tiny_model_dir))
    assert "cannot be reached" in err and "answering here" in err
    assert answer["answer"] == expected and "torch._C" in loaded
