"""The gateway's internal API (``/internal/v1``) as the DAGs call it, with the platform service
token. A refusal or an error is a ``GatewayError`` naming the call and the gateway's message,
so the task fails with a reason (and Airflow retries it with backoff)."""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from gpubroker_dags import config

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0


class GatewayError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status


class Gateway:
    """``wait_s``: how long a call keeps trying while the gateway cannot be reached or answers
    503 (a restart, a database failover), with exponential backoff, before it fails; 0 fails at
    once and leaves the retrying to Airflow."""

    def __init__(self, base_url: str | None = None, token: str | None = None, *, wait_s: float = 0.0) -> None:
        self.base_url = (base_url or config.gateway_url()).rstrip("/")
        self._token = token
        self._wait_s = wait_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateway:
        token = self._token or config.service_token()
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            json_serialize=lambda value: orjson.dumps(value).decode(),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        deadline = time.monotonic() + self._wait_s
        delay = 0.25
        while True:
            try:
                return await self._call(method, path, body, query)
            except GatewayError as exc:
                if exc.status not in (0, 502, 503, 504) or time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; trying again in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _call(self, method: str, path: str, body: Any, query: dict[str, Any]) -> Any:
        assert self._session is not None, "use 'async with Gateway() as gateway'"
        url = f"{self.base_url}/internal/v1{path}"
        try:
            async with self._session.request(method, url, json=body, params=query or None) as answer:
                content = await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayError(method, path, 0, f"the gateway at {self.base_url} cannot be reached: {exc!r}") from None
        if answer.status >= 300:
            raise GatewayError(method, path, answer.status, _message(content))
        return orjson.loads(content) if content else None

    async def get(self, path: str, **query: Any) -> Any:
        return await self.call("GET", path, **query)

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.call("PUT", path, body)


def _message(content: bytes) -> str:
    try:
        detail = orjson.loads(content)["detail"]
        return "; ".join(
            f"{item['field']}: {item['message']}" if item.get("field") else item["message"] for item in detail
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return content[:300].decode("utf-8", "replace")
