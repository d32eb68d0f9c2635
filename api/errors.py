"""One JSON error shape for every failure, with a stable code a client can branch on.

Why one shape: a marketplace's integration handles ``{"error": {"code": ..., "message":
..., "hint": ...}}`` once; FastAPI's defaults (``{"detail": ...}`` in three forms, a bare
500 page) would make every client parse each case. Codes are part of the API (docs/api.md
lists them); messages are for humans and may change.

Nothing reaches a client as a stack trace: an unexpected exception is logged with its
trace and answered ``500 internal`` with a request id to quote.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("renown.api")

__all__ = ["ApiError", "ErrorBody", "error_response", "install_error_handlers"]


class ApiError(Exception):
    """An error a client caused or can act on: status, stable code, message, hint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    hint: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    details: Any = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


# The documented schema of every error body (OpenAPI components reference it).
ErrorBody = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
                "details": {},
            },
        }
    },
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.hint, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "where": ".".join(str(p) for p in err.get("loc", ())),
                "problem": str(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return error_response(
            422,
            "invalid_request",
            f"{first['where']}: {first['problem']}",
            "see details for every problem, and /openapi.json for the expected shape",
            details=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        return error_response(
            exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        return error_response(
            500,
            "internal",
            f"internal error (reference {ref})",
            "the error is logged with this reference; retrying may help if it was transient",
        )
