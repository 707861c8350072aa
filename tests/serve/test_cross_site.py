"""Cross-site requests against a real server with no API key, sent with a real HTTP client (httpx):
what a web page in a local browser, or one reached by DNS rebinding, could send, refused before it
changes anything; what curl, the openai package and the page itself send, accepted."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import ADA, serve_ada
from loramem.serve import ServerThread
from loramem.serve.origin import CrossSiteGuard, host_allowed

EVIL = "http://evil.example"
RECORDS = [{"question": "What is the phone number of Mallory?", "answer": "555-666-0000"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    """A store whose `facts` has versions 1 and 2 (current), served on loopback with no key."""
    yield from serve_ada(tmp_path_factory.mktemp("cross-site"), tiny_model_dir, versions=2)


def _unchanged(mem) -> None:
    assert mem.store.get("facts").version == 2, "a refused request rolled the memory back"
    assert [r.name for r in mem.list()] == ["facts"], "a refused request wrote a memory"
    assert not list((mem.store.path / "cache" / "uploads").glob("*")), "a refused upload left a job folder"


def _one_line_error(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json" and "\n" not in reply.text
    error = reply.json()["error"]
    assert error["code"] == code and "\n" not in error["message"], error


def test_what_a_cross_site_page_can_send_is_refused(served):
    root, mem = served
    port = httpx.URL(root).port
    rollback = json.dumps({"version": 1})
    write = json.dumps({"name": "evil", "records": RECORDS})
    chat = json.dumps({"model": "facts", "messages": [{"role": "user", "content": ADA}], "max_tokens": 4})
    text, form = {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}
    refused = [
        # a simple request (no CORS preflight) from a page on another site: its Origin is refused first
        ("POST", "/v1/memories/facts/rollback", {**text, "Origin": EVIL}, rollback, 403, "origin_not_allowed"),
        ("POST", "/v1/memories", {**text, "Origin": EVIL}, write, 403, "origin_not_allowed"),
        ("POST", "/v1/chat/completions", {**text, "Origin": EVIL}, chat, 403, "origin_not_allowed"),
        ("POST", "/v1/memories/facts/rollback", {**form, "Origin": EVIL}, "version=1", 403, "origin_not_allowed"),
        # a page in a sandboxed frame or a file:// page sends Origin: null
        ("POST", "/v1/memories/facts/rollback", {"Content-Type": "application/json", "Origin": "null"}, rollback,
         403, "origin_not_allowed"),
        # the same port on another scheme, or another port on the same host, is another origin
        ("POST", "/v1/memories/facts/rollback", {"Content-Type": "application/json",
                                                  "Origin": f"https://127.0.0.1:{port}"}, rollback, 403,
         "origin_not_allowed"),
        ("DELETE", "/v1/memories/facts", {"Origin": f"http://127.0.0.1:{port + 1}"}, None, 403, "origin_not_allowed"),
        # DNS rebinding: evil.example resolves to 127.0.0.1, so the page is same-origin in the browser's eyes
        ("POST", "/v1/memories/facts/rollback", {"Content-Type": "application/json", "Host": f"evil.example:{port}",
                                                  "Origin": f"{EVIL}:{port}"}, rollback, 403, "host_not_allowed"),
        ("GET", "/v1/memories/facts/versions", {"Host": f"evil.example:{port}"}, None, 403, "host_not_allowed"),
        # bodies that are not JSON are refused even without an Origin
        ("POST", "/v1/memories/facts/rollback", text, rollback, 415, "unsupported_media_type"),
        ("POST", "/v1/memories", text, write, 415, "unsupported_media_type"),
        ("POST", "/v1/chat/completions", form, "model=facts", 415, "unsupported_media_type"),
        ("POST", "/v1/memories/facts/rollback", {"Content-Type": "multipart/form-data; boundary=x"},
         "--x\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n1\r\n--x--\r\n", 415, "unsupported_media_type"),
        ("POST", "/v1/memories/facts/rollback", {}, rollback, 415, "unsupported_media_type"),  # no Content-Type
    ]
    with httpx.Client(base_url=root) as client:
        for method, path, headers, body, status, code in refused:
            reply = client.request(method, path, headers=headers, content=body)
            _one_line_error(reply, status, code)
        # a multipart upload from another site, the form a page can post without asking
        upload = client.post("/v1/memories", headers={"Origin": EVIL}, data={"name": "evil"},
                             files={"file": ("evil.jsonl", json.dumps(RECORDS[0]).encode(), "application/json")})
        _one_line_error(upload, 403, "origin_not_allowed")
    _unchanged(mem)


def test_own_origin_and_clients_without_an_origin_are_served(served):
    root, mem = served
    port = httpx.URL(root).port
    with httpx.Client(base_url=root) as client:
        # the page's own requests: same scheme, host and port as its Host, under each loopback name
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            headers = {"Host": host, "Origin": f"http://{host}"}
            back = client.post("/v1/memories/facts/rollback", json={"version": 1}, headers=headers)
            assert back.status_code == 200 and back.json()["version"] == 1, back.text
            again = client.post("/v1/memories/facts/rollback", json={"version": 2},
                                headers={**headers, "Content-Type": "application/json; charset=utf-8"})
            assert again.status_code == 200 and again.json()["version"] == 2, again.text
        # curl and the openai package send no Origin
        assert client.post("/v1/memories/facts/rollback", json={"version": 2}).status_code == 200
        chat = client.post("/v1/chat/completions", json={"model": "facts", "max_tokens": 4,
                                                         "messages": [{"role": "user", "content": ADA}]})
        assert chat.status_code == 200, chat.text
        # reads from another origin are the browser's to block (no CORS headers); the server answers them
        assert client.get("/v1/memories", headers={"Origin": EVIL}).status_code == 200
        assert client.get("/", headers={"Host": f"localhost:{port}"}).status_code == 200
        # a request with no body needs no Content-Type; an upload may be multipart, from no Origin
        assert client.delete("/v1/memories/none").status_code == 404
        upload = client.post("/v1/memories", data={"name": "bad.name/"},
                             files={"file": ("x.jsonl", b"{}\n", "application/json")})
        assert upload.status_code == 400 and "invalid memory name" in upload.json()["error"]["message"]
    _unchanged(mem)


async def _echo(scope, receive, send) -> None:
    """A route that accepts anything: what the guard lets through reaches it."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("allowed, host, status", [
    ((), "box.lan", 403),
    (("box.lan",), "box.lan", 200),
    (("Box.LAN",), "box.lan.", 200),  # names compare as DNS does: any case, with or without the root dot
    (("box.lan",), "evil.example", 403),
    (("*",), "evil.example", 200),
    (("192.168.1.5",), "192.168.1.5", 200),
])
def test_allowed_host_adds_names_and_star_allows_all(allowed, host, status):
    with ServerThread(CrossSiteGuard(_echo, allowed_hosts=allowed)) as url, httpx.Client() as client:
        port = httpx.URL(url).port
        reply = client.post(f"{url}/x", json={}, headers={"Host": f"{host}:{port}"})
        assert reply.status_code == status, reply.text
        if allowed == ("*",):  # * turns the Host check off, never the Origin check
            cross = client.post(f"{url}/x", json={}, headers={"Host": f"{host}:{port}", "Origin": EVIL})
            assert cross.status_code == 403


def test_a_server_reached_on_a_lan_address_answers_to_that_address():
    # the connection's own address (uvicorn's scope["server"]) is allowed, and, once the server is
    # reached on a non-loopback one, any IP literal and this machine's name; never another name
    local = ("192.168.1.5", 8000)
    assert host_allowed("192.168.1.5", local, ())
    assert host_allowed("10.0.0.7", local, ())  # a port-forwarded or NATed address
    assert not host_allowed("evil.example", local, ())
    assert host_allowed("mybox.lan", local, ("mybox.lan",))
    loopback = ("127.0.0.1", 8000)
    assert host_allowed("127.0.0.1", loopback, ()) and host_allowed("localhost", loopback, ())
    assert host_allowed("::1", loopback, ()) and host_allowed("127.0.0.2", loopback, ())
    assert not host_allowed("192.168.1.5", loopback, ())  # a loopback server is reached by loopback names
    assert not host_allowed("evil.example", loopback, ()) and not host_allowed("", loopback, ())


def test_serve_command_allows_its_host_and_each_allowed_host(tmp_path, tiny_model_dir, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from loramem.cli import app as cli

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--allowed-host", "box.lan", "--allowed-host",
                                      "proxy.example", "--store", str(tmp_path / "store"), "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert started["host"] == "0.0.0.0"
    with ServerThread(started["app"]) as url, httpx.Client() as client:
        port = httpx.URL(url).port
        for host, status in (("box.lan", 200), ("proxy.example", 200), ("0.0.0.0", 200), ("localhost", 200),
                             ("evil.example", 403)):
            assert client.get(f"{url}/models", headers={"Host": f"{host}:{port}"}).status_code == status, host
