"""The API's error shape: ``{"detail": [{"field": ..., "message": ...}]}`` with a 4xx status.

Every rejected input names the parameter at fault, whether Ninja's type validation or our own
checks caught it.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

_SKIPPED_LOCATIONS = {"query", "body", "path", "header", "cookie", "data"}


class ApiError(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, field, message)


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return api.create_response(
            request, {"detail": [{"field": exc.field, "message": exc.message}]}, status=exc.status
        )

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja's own refusals, such as a body that is not JSON, in the same shape as ours.
        field = "body" if exc.status_code == 400 else None
        return api.create_response(request, {"detail": [{"field": field, "message": str(exc)}]}, status=exc.status_code)

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, {"detail": [{"field": None, "message": "not found"}]}, status=404)

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        detail = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part not in _SKIPPED_LOCATIONS) or None,
                "message": error.get("msg", "invalid value"),
            }
            for error in exc.errors
        ]
        return api.create_response(request, {"detail": detail}, status=422)
