"""The asynchronous client: the same calls as ``Client``, awaited, plus the live stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Self

import httpx

from gpubroker_client import errors, requests, sse
from gpubroker_client.decoding import decode
from gpubroker_client.models import (
    Decision,
    GpuCatalogue,
    Offer,
    OfferPage,
    PriceHistory,
    RankingPage,
    StreamEvent,
)
from gpubroker_client.sync import API


class AsyncClient:
    """``AsyncClient(url=None, api_key=None)``; ``async with`` it, or ``await aclose()``."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: requests.RetryPolicy = requests.RetryPolicy(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, headers = requests.settings(url, api_key)
        self.retry = retry
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def offers(self, **filters: Any) -> OfferPage:
        return decode(OfferPage, await self._call("GET", f"{API}/providers", params=requests.query(filters)))

    async def iter_offers(self, **filters: Any) -> AsyncIterator[Offer]:
        """Every matching offer exactly once, page after page by cursor."""
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.offers(**filters, cursor=cursor)
            for offer in page.items:
                yield offer
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def offer(self, offer_id: str) -> Offer:
        return decode(Offer, await self._call("GET", f"{API}/providers/{offer_id}"))

    async def query(self, **filters: Any) -> OfferPage:
        return decode(OfferPage, await self._call("POST", f"{API}/providers/query", json=requests.body(filters)))

    async def ranking(self, **filters: Any) -> RankingPage:
        params = requests.query(filters)
        return decode(RankingPage, await self._call("GET", f"{API}/providers/ranking", params=params))

    async def decide(self, **filters: Any) -> Decision:
        return decode(Decision, await self._call("POST", f"{API}/providers/decide", json=requests.body(filters)))

    async def gpus(self, **filters: Any) -> GpuCatalogue:
        return decode(GpuCatalogue, await self._call("GET", f"{API}/gpus", params=requests.query(filters)))

    async def price_history(self, **filters: Any) -> PriceHistory:
        params = requests.query(filters)
        return decode(PriceHistory, await self._call("GET", f"{API}/analytics/price-history", params=params))

    async def stream(self, last_event_id: str | None = None, **filters: Any) -> AsyncIterator[StreamEvent]:
        """Changes to the offers matching ``filters``, as they happen, for as long as you iterate.

        A dropped connection is reopened with ``Last-Event-ID``, so the gateway (any instance)
        first sends what was missed: nothing is lost or repeated across a reconnection. An error
        answer (401, 403, 422) ends the iteration with its error; a gateway that stays away past
        the retry policy ends it with ``Unreachable``.
        """
        reader = sse.EventReader(last_event_id=last_event_id)
        params = requests.query(filters)
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if reader.last_event_id is not None:
                headers["Last-Event-ID"] = reader.last_event_id
            try:
                async with self._http.stream(
                    "GET", f"{API}/providers/stream", params=params, headers=headers, timeout=httpx.Timeout(None)
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        requests.parse(response)
                    async for event in sse.events(response.aiter_lines(), reader):
                        failures = 0
                        yield event
            except (httpx.TransportError, httpx.StreamError) as exc:
                wait = self.retry.wait_s(failures, None)
                if wait is None:
                    if isinstance(exc, httpx.TransportError):
                        raise requests.unreachable(self.url, exc) from None
                    raise
                failures += 1
                await asyncio.sleep(reader.retry_s if reader.retry_s is not None and failures == 1 else wait)
                continue
            failures += 1  # the server ended the stream: reconnect as a browser would
            if failures > self.retry.attempts:
                raise errors.Unreachable(f"the gateway at {self.url} keeps closing the stream")
            await asyncio.sleep(reader.retry_s or self.retry.backoff_s)

    async def _call(self, method: str, path: str, **arguments: Any) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, **arguments)
            except httpx.TransportError as exc:
                wait = self.retry.wait_s(attempt, None)
                if wait is None:
                    raise requests.unreachable(self.url, exc) from None
            else:
                wait = self.retry.wait_s(attempt, response)
                if wait is None:
                    return requests.parse(response)
            await asyncio.sleep(wait)
            attempt += 1
