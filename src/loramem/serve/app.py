"""`loramem serve`: an OpenAI-compatible HTTP server whose requests pick their memory.

One base model answers every request. Concurrent requests that use one memory (or none) are
decoded in one batch, each row with its own adapter (`loramem.serve.batching`); merges, kv and
the other modes run alone between its steps. Either way a request sees only the memories it
asked for, whatever else runs at the same time. Errors come back in the OpenAI error schema, so
clients raise their usual exceptions (404 unknown memory, 400 bad request or a question past the
model's window, 401 bad key, 403 a cross-site request, 413 oversized body, 415 a body that is not JSON,
500 for a memory whose adapter file is corrupt). Cross-site requests are refused before the key is
checked, whether or not there is one (`loramem.serve.origin`).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from loramem.errors import LoramemError
from loramem.serve import openai_schema as oa
from loramem.serve.bodies import parse
from loramem.serve.errors import APIError, api_error
from loramem.serve.jobs import WriteJobs
from loramem.serve.limits import BodyLimit
from loramem.serve.origin import CrossSiteGuard
from loramem.serve.pages import add_page_routes, is_public
from loramem.serve.uploads import add_memory_routes

MAX_UPLOAD_BYTES = 16 * 2**20
BASE_ALIASES = ("base", "loramem")
UPLOAD_PATHS = ("/v1/memories",)  # the routes that take multipart/form-data (uploads.py)


def _sse(obj: dict | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


class Server:
    """The state behind the routes: the answering `Memory`, the batcher that owns its model, and the write jobs."""

    def __init__(self, memory, max_new_tokens: int = 256, max_batch: int = 16) -> None:
        from loramem.serve.batching import Batcher

        self.memory = memory
        self.base = memory.base  # loaded now, not by the first request's thread
        self.batcher = Batcher(memory, max_batch)
        self.max_new_tokens = max_new_tokens
        self.jobs = WriteJobs(memory.store.path, memory.model_spec, memory.device)

    # -- answering ---------------------------------------------------------------------------
    def resolve(self, req: oa._Request) -> dict:
        """The `Memory.ask` arguments of a request; unknown model or memories → 404."""
        from loramem.answering import check_merge
        from loramem.modes import MODES
        from loramem.routing import resolve_router

        names = list(req.memories or [])
        if req.model not in (self.base.name, *BASE_ALIASES):
            if not self.memory.store.exists(req.model):
                raise APIError(404, f"The model {req.model!r} does not exist: it is neither the base model "
                               f"({self.base.name}) nor a memory in the store", code="model_not_found", param="model")
            names.insert(0, req.model)
        for name in names:
            if not self.memory.store.exists(name):
                raise APIError(404, f"no memory named {name!r} in the store", code="memory_not_found", param="memories")
        if req.route is not None and names:
            raise APIError(400, "give either memories (or a memory as the model) or route, not both", param="route")
        try:
            question = req.question()
        except ValueError as e:
            raise APIError(400, str(e), param="prompt") from None
        if not question.strip():
            raise APIError(400, "no question: the request has no user message text", param="messages")
        max_new_tokens = req.limit(self.max_new_tokens)
        self.check_length(req, question, max_new_tokens)
        check_merge(req.merge)
        if req.mode is not None:
            MODES.get(req.mode)(**req.mode_options())
        if req.route is not None:
            resolve_router(req.route)
        return dict(question=question, memories=names, mode=req.mode, route=req.route, top_k=req.top_k,
                    merge=req.merge, collection=req.collection, max_new_tokens=max_new_tokens,
                    mode_options=req.mode_options(), scope=req.scope, abstain=req.abstain)

    def check_length(self, req: oa._Request, question: str, max_new_tokens: int) -> None:
        """Refuse a question, or a chat's messages all together, that would not fit in the model's window
        beside the answer (QuestionTooLong, a 400): characters are counted before any tokenizing."""
        from loramem.answering import model_window
        from loramem.prompts import check_question

        window = model_window(self.base.model)
        texts = [m.text() for m in req.messages] if isinstance(req, oa.ChatRequest) else [question]
        if len(texts) > 1:
            check_question(self.batcher.format, "\n\n".join(texts), window, max_new_tokens,
                           what=f"the chat ({len(texts)} messages)")
        else:
            check_question(self.batcher.format, question, window, max_new_tokens)

    def answer(self, args: dict):
        return self.batcher.answer(args)

    def stream(self, args: dict, model: str, chat: bool) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.base.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        result: dict = {}

        def work() -> None:
            try:
                result["answer"] = self.answer({**args, "streamer": streamer})
            except Exception as e:  # reported in the stream: the status line has gone already
                result["error"] = e
            finally:
                streamer.end()

        worker = threading.Thread(target=work, daemon=True, name="loramem-stream")
        worker.start()
        id = oa.new_id("chatcmpl" if chat else "cmpl")
        if chat:
            yield _sse(oa.chat_chunk(id, model, {"role": "assistant", "content": ""}))
        started = False
        for piece in streamer:
            if not started:
                piece = piece.lstrip()
                started = bool(piece)
            if piece:
                yield _sse(oa.chat_chunk(id, model, {"content": piece}) if chat else oa.completion_chunk(id, model, piece))
        worker.join()
        if not started and result.get("answer") is not None and result["answer"].answer:  # a mode that does not stream
            text = result["answer"].answer
            yield _sse(oa.chat_chunk(id, model, {"content": text}) if chat else oa.completion_chunk(id, model, text))
        if "error" in result:
            yield _sse(api_error(result["error"]).body())
        else:
            answer = result["answer"]
            finish = oa.finish_reason(answer)
            last = oa.chat_chunk(id, model, {}, finish) if chat else oa.completion_chunk(id, model, "", finish)
            yield _sse({**last, "usage": oa.usage(answer), "loramem": oa.extras(answer)})
        yield _sse("[DONE]")

    # -- models and memories -----------------------------------------------------------------
    def models(self) -> dict:
        data = [{"id": self.base.name, "object": "model", "created": 0, "owned_by": "loramem"}]
        for r in self.memory.list():
            data.append({"id": r.name, "object": "model", "created": 0, "owned_by": "loramem",
                         "parent": self.base.name, "root": r.base_model})
        return {"object": "list", "data": data}


def create_app(memory, api_key: str | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_new_tokens: int = 256, max_batch: int = 16, allowed_hosts: Sequence[str] = ()) -> FastAPI:
    """The FastAPI app serving `memory` (a `loramem.Memory`); `api_key` makes every request carry it;
    at most `max_batch` requests decode in one batch. Requests must name this server in their Host
    (loopback names and the address they arrive at, plus `allowed_hosts`; "*": any), and cross-site
    ones are refused (`loramem.serve.origin`)."""
    server = Server(memory, max_new_tokens, max_batch)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        server.jobs.shutdown()
        server.batcher.close()

    app = FastAPI(title="loramem", summary="LoRA memories behind the OpenAI API", lifespan=lifespan)
    app.state.server = server
    app.add_middleware(BodyLimit, limit=max_upload_bytes)  # added before the key check, so it runs inside it

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if api_key is not None and not is_public(request.url.path):  # all but the page's own files (no data)
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return APIError(401, "missing or wrong API key: send Authorization: Bearer KEY",
                                code="invalid_api_key").response()
        return await call_next(request)

    # added last, so it runs first: a cross-site request is refused before the key or the body is read
    app.add_middleware(CrossSiteGuard, allowed_hosts=allowed_hosts, uploads=UPLOAD_PATHS)

    @app.exception_handler(APIError)
    @app.exception_handler(LoramemError)  # its subclasses too: unknown memory 404, unreadable adapter 500
    async def known_error(_request, e: Exception):
        return api_error(e).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, e):
        return APIError(400, f"invalid request: {e.errors()[0]['msg']}").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, e):
        return APIError(e.status_code, str(e.detail), type="invalid_request_error").response()

    @app.exception_handler(Exception)
    async def crash(_request, e):
        return api_error(e).response()

    @app.get("/v1/models")
    def models():
        return server.models()

    async def _complete(request: Request, schema, chat: bool):
        req = await parse(request, schema)
        args = await run_in_threadpool(server.resolve, req)
        if req.stream:
            return StreamingResponse(server.stream(args, req.model, chat), media_type="text/event-stream")
        answer = await run_in_threadpool(server.answer, args)
        return oa.chat_completion(answer, req.model) if chat else oa.completion(answer, req.model)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await _complete(request, oa.ChatRequest, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await _complete(request, oa.CompletionRequest, chat=False)

    add_memory_routes(app, server)
    add_page_routes(app, server, max_upload_bytes)

    return app


def serve(memory, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          max_upload_bytes: int = MAX_UPLOAD_BYTES, allowed_hosts: Sequence[str] = ()) -> None:
    """Run the server on `host`:`port` until interrupted; `host` itself is an allowed Host name, as are
    `allowed_hosts` ("*": any)."""
    import uvicorn

    from loramem.handoff import announce

    app = create_app(memory, api_key, max_upload_bytes, allowed_hosts=(host, *allowed_hosts))
    with announce(memory.store.path, host, port, memory.base.name):  # `loramem ask` on this store comes here
        uvicorn.run(app, host=host, port=port, log_level="info")


class ServerThread:
    """Run an app with uvicorn on a background thread (tests, benchmarks): `with ServerThread(app) as url:`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="loramem-serve")

    def __enter__(self) -> str:
        import time

        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
