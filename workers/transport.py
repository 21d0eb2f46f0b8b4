"""How a worker sends a plugin's calls: over HTTP, or from the plugin's bundled snapshot."""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
import orjson

from gpubroker.core.adapter import Call, Response
from gpubroker.core.errors import ProviderBadResponse, ProviderTimeout, ProviderUnreachable
from gpubroker.core.recordings import Recordings


class Transport(Protocol):
    async def send(self, call: Call) -> Response: ...


class HttpTransport:
    """Sends calls to ``base_url`` with one pooled aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, provider: str, base_url: str, timeout_s: float) -> None:
        self._session = session
        self._provider = provider
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, call: Call) -> Response:
        url = self._base_url + call.path
        try:
            async with self._session.request(
                call.method,
                url,
                params=dict(call.params) or None,
                data=None if call.json is None else orjson.dumps(call.json),
                headers={**({"Content-Type": "application/json"} if call.json is not None else {}), **call.headers},
                timeout=self._timeout,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                return Response(call, answer.status, dict(answer.headers), body, self._provider)
        except TimeoutError:
            raise ProviderTimeout(
                self._provider, f"{call.method} {call.path} took longer than {self._timeout.total}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderUnreachable(
                self._provider, f"{call.method} {call.path} failed: {type(exc).__name__}: {exc}"
            ) from None
        except OSError as exc:
            raise ProviderUnreachable(self._provider, f"{call.method} {call.path} failed: {exc}") from None


class SnapshotTransport:
    """Answers calls from a plugin's recordings (its ``default`` scenario)."""

    def __init__(self, recordings: Recordings, *, provider: str) -> None:
        self._recordings = recordings
        self._provider = provider

    async def send(self, call: Call) -> Response:
        await asyncio.sleep(0)
        exchange = self._recordings.find(call.method, call.path, call.params, call.json)
        if exchange is None:
            raise ProviderBadResponse(
                self._provider, f"the bundled snapshot has no answer for {call.method} {call.path}"
            )
        recorded = exchange.response
        return Response(call, recorded.status, recorded.headers, recorded.body, self._provider)
