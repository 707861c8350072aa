"""A running `loramem serve` answers the command line's questions on its store (as Ollama's CLI does).

The server writes `serving.json` into its store folder while it listens (its URL, pid and base
model) and deletes it when it stops. `loramem ask` on that store sends the question to it instead
of loading a model: the answer comes in the server's time (tens of milliseconds with the model
warm) rather than after seconds of imports and loading. This module imports nothing heavy: the
client side must start fast.

An entry whose process is gone, a server that cannot be reached, or one that wants a key the
client lacks is passed over: the question is answered in the client's own process, as before.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loramem.errors import LoramemError

SERVING_FILE = "serving.json"
KEY_ENV = "LORAMEM_API_KEY"  # the key from the environment: `loramem serve --api-key`'s and the client's
_ANSWER_S = 600.0  # kv over a long document on a busy CPU server can take minutes


def _local_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches `host`:`port` by (a wildcard bind is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


@contextmanager
def announce(store: Path, host: str, port: int, model: str) -> Iterator[Path | None]:
    """While the block runs, `store/serving.json` names this process's server; removed after
    (only if it is still this process's: a later server on the same store keeps its own)."""
    path = Path(store) / SERVING_FILE
    entry = {"url": _local_url(host, port), "pid": os.getpid(), "model": model}
    tmp = path.with_name(f".{SERVING_FILE}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)
    except OSError:  # a read-only store: served, not announced
        yield None
        return
    try:
        yield path
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def running_server(store: Path) -> dict | None:
    """The server announced in `store` if its process is alive: {url, pid, model}; else None."""
    try:
        entry = json.loads((Path(store) / SERVING_FILE).read_text())
        pid, url = int(entry["pid"]), str(entry["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if pid != os.getpid() and _alive(pid) and url.startswith("http://") else None


class Unreachable(Exception):
    """The announced server did not take the request (gone, not listening, wants a key): answer locally."""


def ask_server(server: dict, body: dict, api_key: str | None = None) -> dict:
    """POST a completion request to `server`; its JSON reply. Unreachable when it cannot be used;
    LoramemError with the server's own message when it refuses the question (an unknown memory,
    a bad option), as the same question answered locally would."""
    headers = {"Content-Type": "application/json"}
    key = api_key or os.environ.get(KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{server['url']}/completions", data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=_ANSWER_S) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):  # a key this client lacks, or a Host the server does not answer to
            raise Unreachable(f"the server at {server['url']} refused the client ({e.code})") from None
        try:
            message = json.loads(e.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            raise Unreachable(f"the server at {server['url']} answered {e.code}") from None
        raise LoramemError(message) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise Unreachable(f"the server at {server['url']} cannot be reached: {e}") from None
