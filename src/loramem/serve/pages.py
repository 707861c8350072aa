"""The web page of `loramem serve`: its static files at `/`, and the read-only JSON it draws on.

The page itself (HTML, CSS, JS in `web/`) holds no store data, so it is the only thing served
without the API key: everything it shows comes from `/v1/...` endpoints behind the key, which
the page asks for and sends as `Authorization: Bearer KEY`. Mode names and options come from
the `MODES` registry (`GET /v1/loramem/modes`), so a new mode shows up on the page by itself.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from loramem.serve.bodies import parse, validated
from loramem.serve.errors import APIError
from loramem.serve.reports import add_report_routes

WEB = Path(__file__).parent / "web"
# The page loads nothing from elsewhere, and its images are blobs fetched with the key.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


def is_public(path: str) -> bool:
    """Paths served without the API key: the page's own files, which hold no store data."""
    return path == "/" or (path.startswith("/web/") and "/" not in path[5:])


def _web_file(name: str) -> FileResponse:
    files = {p.name: p for p in WEB.iterdir() if p.is_file()}
    if name not in files:
        raise APIError(404, f"the page has no file {name!r}", code="not_found")
    return FileResponse(files[name], headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                              "X-Content-Type-Options": "nosniff"})


class AskRequest(BaseModel):
    """One question in one mode, for the page's side-by-side answers (options: the mode's settings)."""

    model_config = ConfigDict(extra="forbid")

    question: str
    mode: str
    memories: list[str] = Field(default_factory=list)
    route: str | None = None
    top_k: int = Field(1, ge=1)
    merge: str = "sum"
    collection: str | None = None
    abstain: str = "base"
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    max_tokens: int | None = Field(None, ge=1, le=4096)


def mode_entries() -> list[dict]:
    """Every registered answer mode: name, what it does, whether it needs a memory, and its options."""
    from loramem.modes import MODES
    from loramem.options import user_options

    out = []
    for name in MODES.names():
        cls = MODES.get(name)
        doc = (sys.modules[cls.__module__].__doc__ or inspect.getdoc(cls) or "").strip()
        options = [{"name": o.name, "type": getattr(o.type, "__name__", str(o.type)), "default": o.default,
                    "help": o.help, "choices": list(o.choices)}
                   for o in (user_options(cls.settings_type) if cls.settings_type else [])]
        out.append({"name": name, "description": " ".join(doc.split("\n\n")[0].split()),
                    "needs_memory": cls.needs_memory, "options": options})
    return out


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def memory_row(store, record) -> dict:
    """A memory's catalogue entry with its examples by kind and its adapter's size on disk."""
    return {**record.summary(), "examples_by_kind": record.config.get("examples_by_kind", {}),
            "size_bytes": _size(store.adapter_path(record))}


def add_page_routes(app: FastAPI, server, max_upload_bytes: int) -> None:
    """Add the page (`/`, `/web/*`) and its JSON endpoints (`/v1/loramem/...`) over `server`."""
    memory, store = server.memory, server.memory.store

    @app.get("/", include_in_schema=False)
    def index():
        return _web_file("index.html")

    @app.get("/web/{name}", include_in_schema=False)
    def web(name: str):
        return _web_file(name)

    @app.get("/v1/loramem/info")
    def info():
        from loramem.kernels.few_rows import status
        from loramem.supervision.formats import ALIASES, FORMATS
        from loramem.supervision.sources import DOCUMENT_SUFFIXES, RECORD_SUFFIXES
        from loramem.training import TrainConfig

        defaults = TrainConfig()
        return {"object": "loramem.info", "base_model": server.base.name, "fingerprint": server.base.fingerprint,
                "store": str(store.path), "max_upload_bytes": max_upload_bytes,
                "documents": sorted(DOCUMENT_SUFFIXES), "records": sorted(RECORD_SUFFIXES),
                "formats": [*ALIASES, *FORMATS.names()], "rank": defaults.rank, "epochs": defaults.epochs,
                "decode_kernel": status()}  # loramem.kernels: on, or why not

    @app.get("/v1/loramem/modes")
    def modes():
        from loramem.merges import MERGES
        from loramem.routing import router_names

        return {"object": "list", "data": mode_entries(), "routers": router_names(),
                "merges": MERGES.names(), "merge_default": AskRequest.model_fields["merge"].default}

    @app.get("/v1/loramem/memories")
    def memories():
        return {"object": "list", "data": [memory_row(store, r) for r in memory.list()]}

    @app.get("/v1/loramem/memories/{name}")
    def memory_page(name: str):
        record = store.get(name)
        folder = store.adapter_path(record)
        files = [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(folder.iterdir()) if p.is_file()] \
            if folder.is_dir() else []
        return {**memory_row(store, record), "document": record.document, "files": files}

    @app.get("/v1/loramem/memories/{name}/supervision")
    def supervision(name: str, limit: int = 20):
        """The examples the version was trained on, as its folder keeps them (`supervision.jsonl`)."""
        from loramem.supervision.stored import has_supervision, load_supervision

        record = store.get(name)
        folder = store.adapter_path(record)
        limit = max(1, min(limit, 500))
        if not has_supervision(folder):
            return {"object": "list", "name": name, "total": record.examples, "complete": False, "data": [],
                    "note": "written before versions kept their supervision (write --replace keeps it)"}
        stored = load_supervision(folder, name)
        return {"object": "list", "name": name, "version": record.version, "total": len(stored), "complete": True,
                "note": "", "data": [{**s.example.to_dict(), "origin": s.origin} for s in stored[:limit]]}

    @app.get("/v1/loramem/jobs")
    def jobs():
        found = sorted(list(server.jobs.jobs.values()), key=lambda j: j.created, reverse=True)
        return {"object": "list", "data": [j.to_dict() for j in found]}

    @app.post("/v1/loramem/ask")
    async def ask(request: Request):
        req = await _ask_request(request)
        writing = {j.name: j for j in list(server.jobs.jobs.values()) if j.status in ("queued", "running")}
        for name in req.memories:
            if name in writing and not store.exists(name):
                job = writing[name]
                raise APIError(409, f"memory {name!r} is still being written (job {job.id}, "
                               f"{job.to_dict()['progress']:.0%}); ask again once it has finished",
                               code="memory_being_written", param="memories")
        args = await run_in_threadpool(server.resolve, _chat_request(server, req))
        answer = await run_in_threadpool(server.answer, args)
        return {"object": "loramem.answer", **answer.to_dict()}

    add_report_routes(app, server)


async def _ask_request(request: Request) -> AskRequest:
    from loramem.modes import MODES

    req = await parse(request, AskRequest)
    MODES.get(req.mode)(**req.options)  # an unknown mode or option is refused by name
    return req


def _chat_request(server, req: AskRequest):
    from loramem.serve.openai_schema import ChatRequest

    body = {"model": server.base.name, "messages": [{"role": "user", "content": req.question}],
            "memories": req.memories or None, "route": req.route, "top_k": req.top_k, "merge": req.merge,
            "mode": req.mode, "collection": req.collection, "max_tokens": req.max_tokens,
            "abstain": req.abstain, **req.options}
    return validated(ChatRequest, body)
