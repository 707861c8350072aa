"""The OpenAI wire format: request bodies (validated) and response objects (built), plus loramem's extras.

Requests may carry, besides the OpenAI fields, `memories` (names), `route` ("auto" or a router
of ROUTERS), `top_k`, `merge` (a name in MERGES), `mode` (in MODES), `collection`, `scope` (the
cosine a question needs to a fact-table memory's records for its adapter to answer), and every answer
mode's options, as fields generated from the modes' settings dataclasses (`rag_top_k`, `press`,
...: see loramem.modes.mode_options); the `model` field names either the base model or one memory.
Decoding is greedy: sampling fields (temperature, top_p, ...) are accepted and ignored, so
existing clients work unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from loramem.modes import mode_options
from loramem.routing.abstention import ABSTAIN
from loramem.scope import SCOPE


class _RequestFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1, le=4096)
    stream: bool = False
    n: int = Field(1, ge=1, le=1)  # one greedy answer per request
    memories: list[str] | None = None
    route: str | None = None
    top_k: int = Field(1, ge=1)
    merge: str = "sum"
    mode: str | None = None
    collection: str | None = None
    scope: float = Field(SCOPE, ge=0, le=1)
    abstain: Literal[ABSTAIN] = "base"  # a routed question no memory holds: base, rag or never

    def mode_options(self) -> dict:
        """The mode options the request set (None: the mode's default)."""
        return {k: getattr(self, k) for k in MODE_OPTIONS if getattr(self, k) is not None}


def _with_mode_options(base: type[BaseModel]) -> type[BaseModel]:
    """`base` plus one optional field per answer-mode option, typed and described by its dataclass."""
    fields = {}
    for opt in mode_options():
        if opt.name in base.model_fields:
            raise ValueError(f"mode option {opt.name!r} collides with the request field of that name")
        fields[opt.name] = (opt.option.type | None, Field(None, description=opt.help))
    return create_model("_Request", __base__=base, **fields)


MODE_OPTIONS = tuple(o.name for o in mode_options())
_Request = _with_mode_options(_RequestFields)


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[_Part] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)

    def question(self) -> str:
        """The question answered: the last user message (memories are single-turn, as they were written)."""
        users = [m for m in self.messages if m.role == "user"]
        return users[-1].text() if users else ""

    def limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class CompletionRequest(_Request):
    prompt: str | list[str]

    def question(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise ValueError("one prompt per request")
            return self.prompt[0]
        return self.prompt

    def limit(self, default: int) -> int:
        return self.max_tokens or default


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def usage(answer) -> dict:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}


def extras(answer) -> dict:
    return {"memories": answer.memories, "versions": answer.versions, "mode": answer.mode, "routes": answer.routes,
            "kv": answer.kv, "out_of_scope": answer.out_of_scope, "abstained": answer.abstained,
            "seconds": answer.seconds}


def finish_reason(answer) -> Literal["stop", "length"]:
    return "length" if answer.truncated else "stop"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def chat_completion(answer, model: str) -> dict:
    return {
        "id": new_id("chatcmpl"), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                     "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": usage(answer), "loramem": extras(answer),
    }


def completion(answer, model: str) -> dict:
    return {
        "id": new_id("cmpl"), "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "text": answer.answer, "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": usage(answer), "loramem": extras(answer),
    }


def chat_chunk(id: str, model: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}


def completion_chunk(id: str, model: str, text: str, finish: str | None = None) -> dict:
    return {"id": id, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
