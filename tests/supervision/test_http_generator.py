"""The OpenAI-compatible generator against a real HTTP server on loopback."""

from __future__ import annotations

import socket

import pytest

from chat_server import QA_TEXT, Server
from loramem.supervision.generators import GeneratorError, HTTPGenerator


@pytest.fixture
def server(request):
    s = Server(getattr(request, "param", "ok"))
    yield s
    s.close()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_completes_with_the_served_model_and_key(server, monkeypatch):
    monkeypatch.delenv("LORAMEM_GENERATOR_MODEL", raising=False)
    gen = HTTPGenerator(server.url, api_key="sk-test", backoff=0.01)
    texts = gen.complete("Write questions.", n=2, seed=5)
    assert texts == [QA_TEXT, QA_TEXT]
    posts = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert [p["body"]["temperature"] for p in posts] == [0.0, gen.temperature]
    assert posts[0]["body"]["model"] == "served-model" and posts[0]["body"]["seed"] == 5
    assert all(r["auth"] == "Bearer sk-test" for r in server.requests)
    assert "served-model" in gen.id


@pytest.mark.parametrize("server", ["flaky"], indirect=True)
def test_retries_a_server_error(server):
    assert HTTPGenerator(server.url, model="m", backoff=0.01).complete("x") == [QA_TEXT]


def test_down_server_fails_clearly_after_bounded_retries():
    with pytest.raises(GeneratorError, match=r"cannot connect .*gave up after 3 attempts"):
        HTTPGenerator(dead_url(), model="m", backoff=0.01).complete("x")


@pytest.mark.parametrize("server,match", [
    ("junk", "not JSON"), ("wrong-shape", "not a chat completion"), ("unauthorized", "HTTP 401"),
], indirect=["server"])
def test_junk_and_refusals_fail_clearly(server, match):
    with pytest.raises(GeneratorError, match=match):
        HTTPGenerator(server.url, model="m", backoff=0.01).complete("x")
    if match != "HTTP 401":
        assert len(server.requests) >= 3  # retried
    else:
        assert len(server.requests) == 1  # a refusal is not retried


@pytest.mark.parametrize("server", ["slow"], indirect=True)
def test_slow_server_times_out(server):
    with pytest.raises(GeneratorError, match="no answer within 0.2 s"):
        HTTPGenerator(server.url, model="m", timeout=0.2, attempts=2, backoff=0.01).complete("x")


def test_write_through_a_url_generator(server, tmp_path, tiny_model_dir):
    from loramem import Memory

    doc = tmp_path / "velmont.md"
    doc.write_text("The Velmont Observatory opened in 1887. Its first director was Edda Falkenrath.")
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    sup = mem.supervision([doc], format="qa:2", generator=server.url, generator_options={"model": "m"})
    assert [(e.prompt, e.target) for e in sup.examples] == [
        ("When did the Velmont Observatory open?", "1887"), ("Who was its first director?", "Edda Falkenrath")]
    n = len(server.requests)
    mem.supervision([doc], format="qa:2", generator=server.url, generator_options={"model": "m"})
    assert len(server.requests) == n  # cached: a rerun costs nothing
