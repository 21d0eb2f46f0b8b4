"""What can go wrong talking to a gateway, as a small set of errors whose message a person can act
on: the gateway's own message, and for a refused parameter its name."""

from __future__ import annotations

from typing import Any


class GpubrokerError(Exception):
    """Every error of this client."""


class Unreachable(GpubrokerError):
    """No answer: the gateway is down, the address is wrong, or the network failed."""


class ApiError(GpubrokerError):
    """The gateway answered with an error status."""

    def __init__(self, status: int, message: str, field: str | None = None, request_id: str | None = None) -> None:
        self.status = status
        self.message = message
        self.field = field
        self.request_id = request_id
        super().__init__(f"{status}: {field + ': ' if field else ''}{message}")


class Unauthorized(ApiError):
    """401: credentials missing, invalid or expired."""


class Forbidden(ApiError):
    """403: the caller's plan does not allow it (the message names the plan needed)."""


class NotFound(ApiError):
    """404."""


class InvalidRequest(ApiError):
    """400 or 422: a parameter or value the gateway refuses (``field`` names it)."""


class RateLimited(ApiError):
    """429, after the client's retries: ``retry_after_s`` is how long the gateway asked to wait."""

    def __init__(self, status: int, message: str, retry_after_s: float, **details: Any) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(status, message, **details)


class Unavailable(ApiError):
    """503 after the client's retries: the gateway or its database is not ready."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    422: InvalidRequest,
    503: Unavailable,
}


def api_error(status: int, body: Any, retry_after_s: float | None) -> ApiError:
    """The error for an answer's status and its ``{"detail": [{"field", "message"}]}`` body."""
    detail = body.get("detail") if isinstance(body, dict) else None
    first = detail[0] if isinstance(detail, list) and detail and isinstance(detail[0], dict) else {}
    message = str(first.get("message") or (detail if isinstance(detail, str) else f"HTTP {status}"))
    field = first.get("field")
    request_id = body.get("request_id") if isinstance(body, dict) else None
    details = {"field": field, "request_id": request_id}
    if status == 429:
        return RateLimited(status, message, retry_after_s or 0.0, **details)
    return _BY_STATUS.get(status, ApiError)(status, message, **details)
