"""The cross-site case of `bench faults`: a real `loramem serve` with no key, on loopback, gets what a
web page open in the user's browser could send it (simple requests that need no CORS preflight,
form posts, a rebound DNS name), and, as a control, what the page itself and curl send."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from loramem.bench.fault_children import FACTS, MEMORY

EVIL = "http://evil.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _attacks(port: int) -> list[tuple[str, str, dict, str | None, dict | None]]:
    """(what, path, headers, body, multipart files) of each request a foreign page could make."""
    rollback, write = json.dumps({"version": 1}), json.dumps({"name": "evil", "records": FACTS[:1]})
    chat = json.dumps({"model": MEMORY, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    text, form = {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}
    json_type = {"Content-Type": "application/json"}
    return [
        ("rollback as text/plain from another origin", f"/v1/memories/{MEMORY}/rollback", {**text, "Origin": EVIL},
         rollback, None),
        ("write as text/plain from another origin", "/v1/memories", {**text, "Origin": EVIL}, write, None),
        ("chat as text/plain from another origin", "/v1/chat/completions", {**text, "Origin": EVIL}, chat, None),
        ("rollback as a form post", f"/v1/memories/{MEMORY}/rollback", {**form, "Origin": EVIL}, "version=1", None),
        ("rollback from a sandboxed frame (Origin: null)", f"/v1/memories/{MEMORY}/rollback",
         {**json_type, "Origin": "null"}, rollback, None),
        ("rollback by DNS rebinding (Host: evil.example)", f"/v1/memories/{MEMORY}/rollback",
         {**json_type, "Host": f"evil.example:{port}", "Origin": f"{EVIL}:{port}"}, rollback, None),
        ("rollback as text/plain with no Origin", f"/v1/memories/{MEMORY}/rollback", text, rollback, None),
        ("upload as a multipart form from another origin", "/v1/memories", {"Origin": EVIL}, None,
         {"file": ("evil.jsonl", json.dumps(FACTS[0]).encode(), "application/json")}),
        ("delete from another port", f"/v1/memories/{MEMORY}", {"Origin": f"http://127.0.0.1:{port + 1}"}, None,
         None),
    ]


def cross_site_case(store: Path, model: str, log: Callable[[str], None]) -> dict:
    """Send each attack to a real server over loopback; count those answered 2xx or that changed the store."""
    from loramem.store import MemoryStore

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "loramem.cli", "serve", "--store", str(store), "--model", model,
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ))
    root = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=root, timeout=120) as client:
            _wait(client, server)
            generation = MemoryStore(store).generation()
            attacks, accepted, errors = [], 0, 0
            for what, path, headers, body, files in _attacks(port):
                method = "DELETE" if what.startswith("delete") else "POST"
                if files:
                    reply = client.post(path, headers=headers, data={"name": "evil"}, files=files)
                else:
                    reply = client.request(method, path, headers=headers, content=body)
                now = MemoryStore(store).generation()
                changed, generation = now != generation, now
                accepted += reply.is_success or changed
                errors += reply.status_code >= 500
                attacks.append({"request": what, "status": reply.status_code, "changed_store": changed})
                log(f"  {what}: {reply.status_code}{' CHANGED THE STORE' if changed else ''}")
            own = client.post(f"/v1/memories/{MEMORY}/rollback", json={"version": 1},
                              headers={"Origin": root})  # the page itself
            plain = client.post("/v1/chat/completions", json={"model": MEMORY, "max_tokens": 4,
                                                              "messages": [{"role": "user", "content": FACTS[0]['question']}]})
            errors += own.status_code >= 500 or plain.status_code >= 500
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    return {"attacks": attacks, "accepted": accepted, "tracebacks": errors + ("Traceback" in output),
            "own_origin_served": own.status_code == 200, "client_without_origin_served": plain.status_code == 200}


def _wait(client: httpx.Client, server: subprocess.Popen, timeout: float = 180) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if server.poll() is not None:
            raise RuntimeError(f"loramem serve exited: {server.communicate()[0][-2000:]}")
        try:
            if client.get("/v1/models").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("loramem serve did not answer in time")
