"""The body size limit holds while a chunked body streams in, not only against Content-Length."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from loramem import Memory
from loramem.serve import ServerThread, create_app

LIMIT = 64 * 2**10
CHUNK = 64 * 2**10
TOTAL = 128 * 2**20  # what an unbounded server would read: the whole of it
# Loopback buffers can hold several MiB between a client and a server that has stopped reading.
MOST_SENT = 32 * 2**20
BOUNDARY = "loramem-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CHAT = {"model": "base", "messages": [{"role": "user", "content": "What is the phone number of Ada Byron?"}],
        "max_tokens": 4}


class Body:
    """A chunked request body (httpx sends a generator without Content-Length) that counts what it yielded."""

    def __init__(self, head: bytes, total: int = 0, tail: bytes = b"") -> None:
        self.head, self.total, self.tail, self.sent = head, total, tail, 0

    def __iter__(self) -> Iterator[bytes]:
        self.sent += len(self.head)
        yield self.head
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"x" * CHUNK
        if self.tail:
            self.sent += len(self.tail)
            yield self.tail


def _file_part(filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nnotes\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()


@pytest.fixture(scope="module")
def url(tmp_path_factory, tiny_model_dir):
    mem = Memory(store=tmp_path_factory.mktemp("limits") / "store", model=str(tiny_model_dir), progress=False)
    with ServerThread(create_app(mem, max_upload_bytes=LIMIT)) as url:
        yield url


@pytest.mark.parametrize("path, head, content_type", [
    ("/chat/completions", b'{"model": "base", "messages": [{"role": "user", "content": "', "application/json"),
    ("/memories", b'{"name": "big", "text": "', "application/json"),
    ("/memories", _file_part("notes.md"), MULTIPART),
])
def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(url, path, head, content_type):
    body = Body(head, TOTAL)
    refused = httpx.post(f"{url}{path}", content=iter(body), headers={"Content-Type": content_type}, timeout=60)
    assert "content-length" not in refused.request.headers  # chunked, so only the streaming check can see it
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "request_too_large" and f"{LIMIT:,}" in error["message"]
    # the server stopped reading near the limit: the client could not hand over the rest
    assert body.sent < MOST_SENT, f"the client sent {body.sent:,} bytes against a limit of {LIMIT:,}"


def test_a_small_chunked_body_still_works(url):
    chat = httpx.post(f"{url}/chat/completions", content=iter(Body(json.dumps(CHAT).encode())),
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["role"] == "assistant"
    # the form arrives whole and is parsed: its file type is what gets refused
    form = Body(_file_part("notes.pdf"), tail=f"%PDF\r\n--{BOUNDARY}--\r\n".encode())
    parsed = httpx.post(f"{url}/memories", content=iter(form), headers={"Content-Type": MULTIPART}, timeout=60)
    assert parsed.status_code == 400 and "unsupported file type" in parsed.json()["error"]["message"]
