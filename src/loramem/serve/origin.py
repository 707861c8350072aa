"""Refusing cross-site requests: the Host check, the Origin check and JSON-only bodies, in one ASGI middleware.

Any web page open in a browser on this machine may send a "simple" request — a POST whose body is
text/plain, form-urlencoded or multipart — to any address, loopback included, without asking the
server first (no CORS preflight); and DNS rebinding lets a page on evil.example reach the server
under evil.example's own name, so that the browser calls it same-origin. Without an API key
nothing else stands in the way, so, as Jupyter and Ollama do, every request is checked before the
key and before its route:

1. Host (403 `host_not_allowed`): its name must be a loopback name or address (localhost,
   127.0.0.1, ::1), the address the connection arrived at, or a name in `allowed_hosts` (`loramem
   serve --allowed-host NAME`, which also adds `--host`; `*` allows any). Once the server is reached
   on a non-loopback address (bound to 0.0.0.0 or a LAN address), any IP address and this machine's
   host name are allowed too: no page can rebind a name to an address it already is. A rebound
   name is none of these.
2. Origin (403 `origin_not_allowed`): a POST, PUT, PATCH or DELETE that carries an `Origin` must
   come from the server's own: the connection's scheme with the host and port of its `Host`.
   Clients that send none (curl, the openai package, scripts) are not browsers and pass.
3. Content-Type (415 `unsupported_media_type`): such a request with a body must send
   application/json; multipart/form-data is accepted only on the upload routes (`uploads`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from loramem.serve.errors import APIError

LOOPBACK_NAMES = frozenset({"localhost"})
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return mapped or address


def normal_host(name: str) -> str:
    """A host name as DNS compares it: lower case, no brackets around an IPv6 address, no root dot."""
    return name.strip().strip("[]").rstrip(".").lower()


def split_host(header: str) -> tuple[str, int | None]:
    """(name, port) of a Host header: `name`, `name:port`, `[v6]` or `[v6]:port`; port None if absent or bad."""
    header = header.strip()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif header.count(":") == 1:
        name, port = header.split(":")
    else:  # a bare name, or a bare IPv6 address
        name, port = header, ""
    return normal_host(name), int(port) if port.isdigit() else None


def host_allowed(name: str, local: tuple | None, allowed: Collection[str]) -> bool:
    """Whether a request whose Host names `name` (normalized) may be served, on a connection that
    arrived at `local` (uvicorn's `scope["server"]`, (address, port)) with `allowed` extra names."""
    if not name:
        return False
    if "*" in allowed or name in allowed or name in LOOPBACK_NAMES:
        return True
    address = _ip(name)
    if address is not None and address.is_loopback:
        return True
    arrived = _ip(normal_host(str(local[0]))) if local else None
    if arrived is None or arrived.is_loopback:
        return False
    if address is not None:  # reached on a non-loopback address: every IP address is one a client may use
        return True
    machine = normal_host(socket.gethostname())
    return name in (machine, f"{machine}.local")


def own_origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    """The (scheme, host, port) a same-origin page of this request would send, the default port filled in."""
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme, 0)


def parse_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an Origin header, or None for `null` or anything that is not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return own_origin(parts.scheme, normal_host(parts.hostname), port)


def _shown(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


class CrossSiteGuard:
    """ASGI middleware refusing a bad Host (403), a foreign Origin on a state-changing request (403)
    and a body that is not JSON (415; multipart allowed on `uploads` paths) before `app` sees them."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = (), uploads: Collection[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(normal_host(h) if h.strip() != "*" else "*" for h in allowed_hosts if h.strip())
        self.uploads = frozenset(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            response = refusal.response()
            response.headers["Connection"] = "close"  # the body goes unread
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> APIError | None:
        """Why the request must not reach the app, or None."""
        headers = Headers(scope=scope)
        host_header = headers.get("host", "")
        name, port = split_host(host_header)
        if not host_allowed(name, scope.get("server"), self.allowed):
            return APIError(403, f"Host {_shown(host_header)} is not a name of this server, and a page on another "
                            "site may have rebound it to this machine: use http://127.0.0.1 or http://localhost, or "
                            "start loramem serve with --allowed-host NAME to serve under that name",
                            code="host_not_allowed")
        if scope["method"] not in CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None and parse_origin(origin) != own_origin(scope.get("scheme", "http"), name, port):
            return APIError(403, f"cross-site request refused: Origin {_shown(origin)} is not this server's own; "
                            "send it from the page that loramem serve serves at /, or from a client that sends "
                            "no Origin (curl, the openai package)", code="origin_not_allowed")
        has_body = headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers
        kind = headers.get("content-type")
        if not has_body and kind is None:
            return None
        media = (kind or "").split(";")[0].strip().lower()
        upload = scope.get("path") in self.uploads and scope["method"] == "POST"
        if media == "application/json" or (upload and media == "multipart/form-data"):
            return None
        wanted = "application/json" + (" (or multipart/form-data to upload files)" if upload else "")
        return APIError(415, f"request body of type {_shown(kind or 'none')} refused: send Content-Type: {wanted}",
                        code="unsupported_media_type")
