"""`/v1/memories`: list, show, delete, and write memories from uploads (a background job per write).

A write takes either a JSON body — `{"name", "records": [{"question", "answer"}], "text",
"filename", "format", "rank", "epochs", "replace"}` — or a multipart form with one or more
`file` parts and the same fields. The answer is 202 with a job id; `GET /v1/memories/jobs/ID`
reports its status and progress. The body limit is `limits.BodyLimit`'s, checked as the body
streams in, so a form is parsed as it arrives, not after the whole body has been held.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loramem.errors import LoramemError
from loramem.serve.errors import APIError
from loramem.store import validate_name
from loramem.supervision.sources import DOCUMENT_SUFFIXES, RECORD_SUFFIXES


def _write_args(fields: dict) -> dict:
    from loramem.training import TrainConfig

    args: dict = {"format": str(fields.get("format") or "auto"), "replace": str(fields.get("replace", "")).lower()
                  in ("1", "true", "yes")}
    settings = {}
    for key, cast in (("rank", int), ("epochs", int)):
        value = fields.get(key)
        if value in (None, ""):
            continue
        if key == "rank" and value == "auto":
            args["rank"] = "auto"
            continue
        try:
            settings[key] = cast(value)
        except (TypeError, ValueError):
            raise LoramemError(f"{key} must be an integer, got {value!r}") from None
    try:
        args["config"] = TrainConfig(**settings)
    except (TypeError, ValueError) as e:
        raise LoramemError(f"invalid training settings: {e}") from None
    return args


def _safe_filename(name: str) -> str:
    base = Path(name or "").name
    if Path(base).suffix.lower() not in DOCUMENT_SUFFIXES | RECORD_SUFFIXES:
        valid = ", ".join(sorted(DOCUMENT_SUFFIXES | RECORD_SUFFIXES))
        raise LoramemError(f"upload {name!r}: unsupported file type; use one of {valid}")
    return base


async def _receive(request: Request, folder: Path) -> dict:
    """Save the request's documents or records into `folder`; returns the form fields."""
    folder.mkdir(parents=True, exist_ok=True)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        files = [v for k, v in form.multi_items() if k == "file" and not isinstance(v, str)]
        if not files:
            raise LoramemError("the form has no 'file' part")
        for f in files:
            (folder / _safe_filename(f.filename)).write_bytes(await f.read())
        fields.setdefault("name", Path(files[0].filename).stem)
        return fields
    try:
        fields = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(fields, dict):
        raise LoramemError("the body must be a JSON object")
    records, text = fields.get("records"), fields.get("text")
    if (records is None) == (text is None):
        raise LoramemError("give either records (a list of {question, answer}) or text (a document)")
    if records is not None:
        if not isinstance(records, list) or not records:
            raise LoramemError("records must be a non-empty list of {question, answer} objects")
        (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        (folder / _safe_filename(fields.get("filename") or "document.md")).write_text(str(text))
    return fields


def add_memory_routes(app: FastAPI, server) -> None:
    """Add the `/v1/memories` routes over `server` (an `app.Server`) to `app`."""
    store = server.memory.store

    @app.get("/v1/memories")
    def list_memories():
        return {"object": "list", "data": [r.summary() for r in server.memory.list()]}

    @app.get("/v1/memories/jobs/{job_id}")
    def job(job_id: str):
        found = server.jobs.get(job_id)
        if found is None:
            raise APIError(404, f"no write job {job_id!r}", code="job_not_found")
        return found.to_dict()

    @app.get("/v1/memories/{name}")
    def show(name: str):
        return store.get(name).summary()

    @app.delete("/v1/memories/{name}")
    def delete(name: str):
        store.remove(name)
        return {"id": name, "object": "memory", "deleted": True}

    @app.post("/v1/memories", status_code=202)
    async def write(request: Request):
        from loramem.supervision.sources import read_sources

        job_id = server.jobs.new_id()
        folder = server.jobs.folder(job_id)
        try:
            fields = await _receive(request, folder)
            name = validate_name(str(fields.get("name") or "")) if fields.get("name") else None
            if name is None:
                raise LoramemError("give the memory a name")
            args = _write_args(fields)
            if store.exists(name) and not args["replace"]:
                raise APIError(409, f"a memory named {name!r} already exists; send replace=true to overwrite it",
                               code="memory_exists", param="name")
            files = sorted(folder.iterdir())
            read_sources(files)  # unreadable records fail now, not in the job
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = server.jobs.submit(job_id, name, files, args)
        return JSONResponse(job.to_dict(), status_code=202)
