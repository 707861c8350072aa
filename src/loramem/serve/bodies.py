"""Request bodies: JSON parsed and validated into one-line 400s, never a 500.

Whatever a client sends — broken JSON, bytes that are not UTF-8, arrays nested 100,000 deep, numbers
past what SQLite stores — comes back as a 400 naming the field, before a route acts on it.
`origin.CrossSiteGuard` has already refused bodies that are not application/json.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from loramem.serve.errors import APIError

MAX_VERSION = 2**63 - 1  # the largest integer SQLite stores, so the largest version number there can be
Model = TypeVar("Model", bound=BaseModel)


def json_body(raw: bytes) -> Any:
    """The JSON value of a request body; 400 if it is not JSON, not UTF-8 or nested too deep to read."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise APIError(400, "the request body is nested too deeply to read: send flat JSON objects") from None


async def json_object(request: Request) -> dict:
    """The request's body as a JSON object."""
    fields = json_body(await request.body())
    if not isinstance(fields, dict):
        raise APIError(400, "the body must be a JSON object")
    return fields


def validated(model: type[Model], data: Any) -> Model:
    """`data` as a `model`; the first problem found is a 400 naming its field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise APIError(400, f"invalid request: {where}: {first['msg']}", param=where) from None


async def parse(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as a `model`."""
    return validated(model, json_body(await request.body()))


class RollbackRequest(BaseModel):
    """`POST /v1/memories/NAME/rollback`: the version to make current again."""

    model_config = ConfigDict(extra="forbid")

    version: StrictInt = Field(ge=1, le=MAX_VERSION, description="a version number from GET .../versions")
