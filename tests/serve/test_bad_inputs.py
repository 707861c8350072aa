"""What no request may do to the server: a 500 where a 4xx fits, a message showing where the
server keeps uploads, or a question past the model's window read at any length."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import ADA, serve_ada
from loramem.prompts import PromptFormat

JSON = {"Content-Type": "application/json"}
RECORD = {"question": "What is the phone number of Mallory?", "answer": "555-666-0000"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    yield from serve_ada(tmp_path_factory.mktemp("bad-inputs"), tiny_model_dir, versions=1)


def _chat(content: str = ADA, **extra) -> dict:
    return {"model": "facts", "messages": [{"role": "user", "content": content}], "max_tokens": 8, **extra}


def _refused(reply: httpx.Response, status: int, *words: str) -> str:
    assert reply.status_code == status, reply.text
    assert "\n" not in reply.text
    message = reply.json()["error"]["message"]
    assert all(w in message for w in words), message
    return message


def test_no_request_input_gives_a_500_or_shows_a_server_path(served):
    root, mem = served
    uploads = str(mem.store.path / "cache" / "uploads")
    deep = b"[" * 100_000 + b"]" * 100_000
    text = {"name": "doc", "text": "hello"}
    cases = [  # (path, body, status, words the message holds)
        ("/v1/memories/facts/rollback", {"version": 10**30}, 400, ["version", "less than or equal"]),
        ("/v1/memories/facts/rollback", {"version": -(10**30)}, 400, ["version", "greater than or equal"]),
        ("/v1/memories/facts/rollback", {"version": 0}, 400, ["version"]),
        ("/v1/memories/facts/rollback", {"version": True}, 400, ["version"]),
        ("/v1/memories/facts/rollback", {"version": "1"}, 400, ["version"]),
        ("/v1/memories/facts/rollback", {"version": 9}, 404, ["no version 9"]),
        ("/v1/chat/completions", _chat(model=f"facts@{10**30}"), 404, ["does not exist"]),
        ("/v1/chat/completions", _chat(memories=[f"facts@{10**30}"]), 404, ["no memory"]),
        ("/v1/chat/completions", _chat("\ud800 lone"), 400, ["not valid Unicode", "ud800"]),
        ("/v1/loramem/ask", {"question": "\udfff", "mode": "parametric", "memories": ["facts"]}, 400, ["Unicode"]),
        ("/v1/memories", {**text, "text": "a \ud800"}, 400, ["not valid Unicode"]),
        ("/v1/memories", {"name": "r", "records": [{"question": "\ud800", "answer": "x"}]}, 400, ["Unicode"]),
        ("/v1/memories", {**text, "filename": "a" * 300 + ".md"}, 400, ["file name takes 303 bytes", "200"]),
        ("/v1/memories", {**text, "filename": "a\x00.md"}, 400, ["control character"]),
        ("/v1/memories", {**text, "filename": "a\ud800.md"}, 400, ["not valid UTF-8"]),
        ("/v1/memories", {**text, "filename": 5}, 400, ["must be a string"]),
        ("/v1/memories", {**text, "format": "\x00"}, 400, ["unknown format"]),
        ("/v1/memories", {**text, "rank": 10**30}, 400, ["hidden size"]),
        ("/v1/memories", {"name": "r", "records": [1, 2]}, 400, ["records.jsonl:1"]),
        ("/v1/memories/facts/versions", {"text": "x", "filename": "b" * 300 + ".md"}, 400, ["file name takes"]),
    ]
    with httpx.Client(base_url=root, timeout=120) as client:
        for path, body, status, words in cases:
            reply = client.post(path, content=json.dumps(body).encode(), headers=JSON)
            assert uploads not in _refused(reply, status, *words), reply.text
        for path in ("/v1/chat/completions", "/v1/loramem/ask", "/v1/memories", "/v1/memories/facts/rollback",
                     "/v1/memories/facts/versions"):
            _refused(client.post(path, content=deep, headers=JSON), 400, "nested too deeply")
        long = client.post("/v1/memories", data={"name": "up"},
                           files={"file": ("c" * 300 + ".jsonl", json.dumps(RECORD).encode(), "application/json")})
        assert uploads not in _refused(long, 400, "file name takes 306 bytes")
        # httpx escapes a NUL in a file name (%00); a client that does not sends it as it is
        form = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.jsonl"\r\n\r\n'
                + json.dumps(RECORD).encode() + b"\n\r\n--x--\r\n")
        nul = client.post("/v1/memories", content=form, headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert uploads not in _refused(nul, 400, "control character")
        # the server goes on answering, and nothing was written or left behind
        assert client.post("/v1/chat/completions", json=_chat()).status_code == 200
    assert [r.name for r in mem.list()] == ["facts"] and mem.store.get("facts").version == 1
    assert not list((mem.store.path / "cache" / "uploads").glob("*"))


def test_a_question_past_the_window_is_refused_naming_the_limit(served):
    root, mem = served
    fmt = PromptFormat(mem.base.tokenizer)
    window = mem.base.model.config.max_position_embeddings
    words = 1
    while len(fmt.prompt_ids("word " * (words + 1))) + 8 <= window:  # the longest question that fits
        words += 1
    assert len(fmt.prompt_ids("word " * (words + 1))) + 8 > window
    with httpx.Client(base_url=root, timeout=120) as client:
        fits = client.post("/v1/chat/completions", json=_chat("word " * words))
        assert fits.status_code == 200, fits.text
        for path, body in (("/v1/chat/completions", _chat("word " * (words + 1))),
                           ("/v1/completions", {"model": "facts", "prompt": "word " * (words + 1), "max_tokens": 8}),
                           ("/v1/loramem/ask", {"question": "word " * (words + 1), "mode": "parametric",
                                                "memories": ["facts"], "max_tokens": 8})):
            reply = client.post(path, json=body)
            _refused(reply, 400, f"the model's {window}-token window", "tokens)")
            assert reply.json()["error"]["code"] == "context_length_exceeded"
        # the default answer length (256 tokens) leaves less room, and the message says so
        _refused(client.post("/v1/chat/completions", json={**_chat("word " * words), "max_tokens": None}), 400,
                 "an answer of up to 256 tokens")
        # megabytes are refused by their length, before any tokenizing
        _refused(client.post("/v1/chat/completions", json=_chat("x" * 3_000_000)), 400, "(3,000,000 characters)")
        # a chat's messages count together, the system message and earlier turns too
        history = {**_chat(), "messages": [{"role": "system", "content": "word " * words},
                                           {"role": "user", "content": ADA}]}
        _refused(client.post("/v1/chat/completions", json=history), 400, "the chat (2 messages) is too long")
