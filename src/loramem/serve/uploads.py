"""`/v1/memories`: list, show, delete, and write memories from uploads (a background job per write).

A write takes either a JSON body — `{"name", "records": [{"question", "answer"}], "text",
"filename", "format", "rank", "epochs", "replace"}` — or a multipart form with one or more
`file` parts and the same fields. The answer is 202 with a job id; `GET /v1/memories/jobs/ID`
reports its status and progress. `POST /v1/memories/NAME/versions` updates a memory the same way
(`records`, or a document as `text` and `filename`, plus `remove` records, `remove_documents`
names, `method`, `epochs` and `accept_below_target`, as the CLI's flags: a next version short of the
memory's target is not committed and its job fails with the reason); `GET` there lists its
versions, and `POST /v1/memories/NAME/rollback` `{"version": N}` makes one current again. The
body limit is `limits.BodyLimit`'s, checked as the body streams in, so a form is parsed as it
arrives, not after the whole body has been held.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loramem.errors import LoramemError
from loramem.serve.bodies import RollbackRequest, json_object, validated
from loramem.serve.errors import APIError
from loramem.store import validate_name
from loramem.supervision.sources import DOCUMENT_SUFFIXES, RECORD_SUFFIXES

MAX_FILENAME_BYTES = 200  # a file system takes 255 per name; the rest is room for what the store adds


def _write_args(fields: dict) -> dict:
    from loramem.supervision import parse_format
    from loramem.training import TrainConfig
    from loramem.training.config import parse_rank

    args: dict = {"format": str(fields.get("format") or "auto"), "replace": str(fields.get("replace", "")).lower()
                  in ("1", "true", "yes")}
    parse_format(args["format"])  # an unknown format is refused now, not in the job
    settings = {}
    if fields.get("rank") not in (None, ""):
        rank = parse_rank(fields["rank"])
        if rank == "auto":
            args["rank"] = rank
        else:
            settings["rank"] = rank
    epochs = fields.get("epochs")
    if epochs not in (None, ""):
        try:
            settings["epochs"] = int(epochs)
        except (TypeError, ValueError):
            raise LoramemError(f"epochs must be an integer, got {epochs!r}") from None
    try:
        args["config"] = TrainConfig(**settings)
    except (TypeError, ValueError) as e:
        raise LoramemError(f"invalid training settings: {e}") from None
    return args


def _safe_filename(name: object) -> str:
    """The name an upload is saved under in its job folder: its last part, refused (400, never an OSError
    that would show the folder) when it holds a control character, is not UTF-8 or is too long."""
    if not isinstance(name, str):
        raise LoramemError(f"a file name must be a string, got {type(name).__name__}")
    base = Path(name).name
    shown = repr(base if len(base) <= 60 else base[:40] + "..." + base[-12:])
    if any(ord(c) < 32 or ord(c) == 127 for c in base):
        raise LoramemError(f"upload {shown}: the file name holds a control character; rename the file")
    try:
        size = len(base.encode("utf-8"))
    except UnicodeEncodeError:
        raise LoramemError(f"upload {shown}: the file name is not valid UTF-8; rename the file") from None
    if size > MAX_FILENAME_BYTES:
        raise LoramemError(f"upload {shown}: the file name takes {size} bytes, more than the {MAX_FILENAME_BYTES} "
                           "a name may; rename the file")
    if Path(base).suffix.lower() not in DOCUMENT_SUFFIXES | RECORD_SUFFIXES:
        valid = ", ".join(sorted(DOCUMENT_SUFFIXES | RECORD_SUFFIXES))
        raise LoramemError(f"upload {shown}: unsupported file type; use one of {valid}")
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
    fields = await json_object(request)
    _save_inputs(fields, folder)
    return fields


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise LoramemError(f"{what} is not valid Unicode text: it holds the lone surrogate {text[e.start]!r}; "
                           "send UTF-8 text") from None


def _hide_folder(e: BaseException, folder: Path) -> None:
    """Name the upload, not where the server keeps it, in the message of an error it caused."""
    if isinstance(e, LoramemError) and e.args and isinstance(e.args[0], str):
        e.args = (e.args[0].replace(f"{folder}{os.sep}", "").replace(str(folder), "the upload"), *e.args[1:])


def _save_inputs(fields: dict, folder: Path) -> None:
    """A JSON body's `records` or document (`text`, `filename`) saved as a file in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    records, text = fields.get("records"), fields.get("text")
    if (records is None) == (text is None):
        raise LoramemError("give either records (a list of {question, answer}) or text (a document)")
    if records is not None:
        if not isinstance(records, list) or not records:
            raise LoramemError("records must be a non-empty list of {question, answer} objects")
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (folder / "records.jsonl").write_bytes(_utf8(lines, "records"))
    else:
        (folder / _safe_filename(fields.get("filename") or "document.md")).write_bytes(_utf8(str(text), "text"))


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

    @app.get("/v1/memories/{name}/versions")
    def versions(name: str):
        return {"object": "list", "data": [v.summary() for v in server.memory.log(name)]}

    @app.post("/v1/memories/{name}/rollback")
    async def rollback(name: str, request: Request):
        version = validated(RollbackRequest, await json_object(request)).version
        return server.memory.rollback(name, version).summary()

    @app.post("/v1/memories/{name}/versions", status_code=202)
    async def update(name: str, request: Request):
        from loramem.updates import UPDATES
        from loramem.updates.apply import prepare_update

        store.get(name)  # an unknown memory is a 404 now, not a failed job
        job_id = server.jobs.new_id()
        folder = server.jobs.folder(job_id)
        try:
            fields = await json_object(request)
            removals = fields.get("remove")
            if removals is not None and (not isinstance(removals, list) or not removals):
                raise LoramemError("remove must be a non-empty list of {question, answer} objects")
            names = fields.get("remove_documents") or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise LoramemError("remove_documents must be a list of document file names")
            if fields.get("records") is not None or fields.get("text") is not None:
                _save_inputs(fields, folder)
            if fields.get("method") is not None:
                UPDATES.get(str(fields["method"]))
            epochs, accept = fields.get("epochs"), fields.get("accept_below_target", False)
            if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
                raise LoramemError("epochs must be a positive integer (the epoch limit of each training round)")
            if not isinstance(accept, bool):
                raise LoramemError("accept_below_target must be true or false")
            files = sorted(folder.iterdir()) if folder.exists() else []
            prepare_update(server.memory, name, files, names, remove_records=removals)  # bad updates fail now
        except BaseException as e:
            shutil.rmtree(folder, ignore_errors=True)
            _hide_folder(e, folder)
            raise
        args = {"remove": names, "remove_records": removals, "method": fields.get("method"), "epochs": epochs,
                "accept_below_target": accept}
        job = server.jobs.submit(job_id, name, files, args, update=True)
        return JSONResponse(job.to_dict(), status_code=202)

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
            hidden = getattr(server.base.model.config, "hidden_size", None)
            if hidden and args.get("rank") != "auto" and args["config"].rank > hidden:  # refused now, not in the job
                raise LoramemError(f"rank {args['config'].rank} is larger than the model's hidden size: use at most {hidden}")
            if store.exists(name) and not args["replace"]:
                raise APIError(409, f"a memory named {name!r} already exists; send replace=true to overwrite it",
                               code="memory_exists", param="name")
            files = sorted(folder.iterdir())
            read_sources(files)  # unreadable records fail now, not in the job
        except BaseException as e:
            shutil.rmtree(folder, ignore_errors=True)
            _hide_folder(e, folder)
            raise
        job = server.jobs.submit(job_id, name, files, args)
        return JSONResponse(job.to_dict(), status_code=202)
