"""Carol-shaped error bodies and the exception handlers that produce them."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

_ENCODER = msgspec.json.Encoder()


class CarolError(Exception):
    """An error answered with Carol's JSON body: errorCode, errorMessage, possibleResponsibleField.

    pycarol branches on substrings of ``errorMessage`` (``already exists``, ``Not found``) and on
    ``possibleResponsibleField`` for 401s, so keep those words where Carol would put them.
    """

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON object Carol sends with every non-2xx answer (``applicationErrorCode`` is null in every
    answer seen from real tenants; carol-evidence.md)."""
    return {
        "applicationErrorCode": None,
        "errorCode": status,
        "errorMessage": message,
        "possibleResponsibleField": field,
    }


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Encode with msgspec: FastAPI's jsonable_encoder is far too slow for large admin dumps."""
    return Response(
        _ENCODER.encode(payload), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A Carol error as a response (the reason phrase comes from the status, e.g. ``Unauthorized``)."""
    return json_response(error_body(status, message, field), status, headers)


async def _carol_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CarolError):  # pragma: no cover - registered for CarolError only
        raise exc
    return error_response(exc.status, exc.message, exc.field, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, message, None, dict(exc.headers or {}))


async def _validation_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
    return error_response(
        400, f"Invalid request: {where or 'parameter'}: {first.get('msg', 'invalid')}", where or None
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, including FastAPI's own 404/405/422, look like Carol's."""
    app.add_exception_handler(CarolError, _carol_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
