"""What the synchronous and the asynchronous client share: the gateway's address and credentials,
how filters become query parameters, when to retry, and how an error answer becomes an error."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from gpubroker_client import errors
from gpubroker_client.decoding import loads
from gpubroker_client.endpoints import API, Endpoint

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "gpubroker-client/0.1.0"
RETRIED = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a 429 or 503 up to ``attempts`` more times, waiting what ``Retry-After`` asks (at
    most ``max_wait_s``), else an exponential backoff with jitter; a connection that fails is
    retried the same way."""

    attempts: int = 3
    max_wait_s: float = 30.0
    backoff_s: float = 0.5

    def wait_s(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when not to retry."""
        if attempt >= self.attempts:
            return None
        if response is not None:
            if response.status_code not in RETRIED:
                return None
            asked = retry_after_s(response)
            if asked is not None:
                return asked if asked <= self.max_wait_s else None
        return min(self.max_wait_s, self.backoff_s * 2**attempt * (0.5 + random.random()))


NO_RETRIES = RetryPolicy(attempts=0)


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def settings(url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The base URL and headers: arguments first, then ``GPUBROKER_URL`` and ``GPUBROKER_API_KEY``."""
    base = (url or os.environ.get("GPUBROKER_URL") or DEFAULT_URL).rstrip("/")
    key = api_key if api_key is not None else os.environ.get("GPUBROKER_API_KEY")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    return base, headers


def query(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The list's filters as query parameters: lists comma-separated, booleans ``true``/``false``,
    times ISO 8601, ``None`` left out."""
    params = []
    for name, value in filters.items():
        if value is None:
            continue
        params.append((name, _text(value)))
    return params


def body(filters: Mapping[str, Any]) -> dict[str, Any]:
    """The same filters as a JSON body (``POST /providers/query``, ``/decide``)."""
    return {name: _json(value) for name, value in filters.items() if value is not None}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Iterable):
        return ",".join(_text(item) for item in value)
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json(item) for item in value]
    return value


def arguments(endpoint: Endpoint, filters: Mapping[str, Any], path: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The URL path and httpx's arguments for calling ``endpoint`` with ``filters``."""
    url = API + endpoint.path.format_map({name: quote(value, safe="") for name, value in path.items()})
    return url, {"json": body(filters)} if endpoint.body else {"params": query(filters)}


def parse(response: httpx.Response) -> Any:
    """The answer's JSON, or the error it stands for."""
    if response.status_code >= 400:
        try:
            content = loads(response.content)
        except ValueError:
            content = None
        raise errors.api_error(response.status_code, content, retry_after_s(response))
    return loads(response.content)


def unreachable(url: str, exc: httpx.TransportError) -> errors.Unreachable:
    reason = str(exc) or type(exc).__name__
    return errors.Unreachable(f"cannot reach the gateway at {url}: {reason}")
