"""Errors in the OpenAI error schema, and which status each library error answers with.

Its own module so that the routes (`app.py`, `uploads.py`) and the body limit (`limits.py`)
import it without importing each other.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from loramem.errors import AdapterFileError, LoramemError, QuestionTooLong, UnknownMemoryError
from loramem.serve import openai_schema as oa


class APIError(Exception):
    """An HTTP error answer: status, message, and the OpenAI error `type`, `code` and `param`."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        # one line, and text that encodes as UTF-8 whatever input the message quotes (a lone surrogate)
        message = " ".join(message.splitlines()).encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict:
        return oa.error_body(self.message, self.type, self.code, self.param)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def api_error(e: Exception) -> APIError:
    """The answer to an exception a request raised: the caller's fault is a 4xx, the store's or ours a 500."""
    if isinstance(e, APIError):
        return e
    if isinstance(e, UnknownMemoryError):
        return APIError(404, str(e), code="memory_not_found")
    if isinstance(e, QuestionTooLong):  # OpenAI's answer to a prompt past the model's context
        return APIError(400, str(e), code="context_length_exceeded", param="messages")
    if isinstance(e, AdapterFileError):  # the store's state, not the request: other memories still answer
        return APIError(500, str(e), type="server_error", code="adapter_file_error")
    if isinstance(e, LoramemError):
        return APIError(400, str(e))
    return APIError(500, f"{type(e).__name__}: {e}", type="server_error")
