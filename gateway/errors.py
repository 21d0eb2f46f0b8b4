"""The API's error shape: ``{"detail": [{"field": ..., "message": ...}], "request_id": ...}``.

Every rejected input names the parameter at fault, whether Ninja's type validation or our own
checks caught it; whatever Django itself refuses (a 400, 404 or 500 outside Ninja) answers the
same JSON, never an HTML page. A database that cannot be reached is a 503 with ``Retry-After``,
never a 500 or a hang.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from gpubroker.gateway.db import RETRY_AFTER_S, DatabaseUnavailable

log = logging.getLogger(__name__)

_SKIPPED_LOCATIONS = {"query", "body", "path", "header", "cookie", "data"}


class ApiError(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, field, message)


def unavailable(what: str) -> ApiError:
    """A 503 for a dependency that is away; the answer carries ``Retry-After``."""
    return ApiError(503, None, f"{what} is unavailable; nothing was changed, retry shortly")


def request_id(request: HttpRequest) -> str | None:
    scope = getattr(request, "scope", None)
    return None if scope is None else scope.get("gpubroker.request_id")


def body(request: HttpRequest | None, field: str | None, message: str) -> dict[str, Any]:
    return {
        "detail": [{"field": field, "message": message}],
        "request_id": None if request is None else request_id(request),
    }


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = api.create_response(request, body(request, exc.field, exc.message), status=exc.status)
        if exc.status == 503:
            response["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @api.exception_handler(DatabaseUnavailable)
    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def _database_down(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        return _api_error(request, unavailable("the database"))

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja's own refusals, such as a body that is not JSON, in the same shape as ours.
        field = "body" if exc.status_code == 400 else None
        return api.create_response(request, body(request, field, str(exc)), status=exc.status_code)

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, body(request, None, "not found"), status=404)

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        detail = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part not in _SKIPPED_LOCATIONS) or None,
                "message": error.get("msg", "invalid value"),
            }
            for error in exc.errors
        ]
        return api.create_response(request, {"detail": detail, "request_id": request_id(request)}, status=422)


def _json(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return HttpResponse(orjson.dumps(body(request, None, message)), status=status, content_type="application/json")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _json(request, 400, "the request is malformed")


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _json(request, 403, "forbidden")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _json(request, 404, "not found")


def server_error(request: HttpRequest) -> HttpResponse:
    return _json(request, 500, "internal error; it has been logged")
