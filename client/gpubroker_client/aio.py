"""The asynchronous client: the same calls as ``Client``, awaited, plus the live stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Self

import httpx

from gpubroker_client import endpoints, errors, requests, sse
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
        return await self._ask(endpoints.OFFERS, filters)

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
        return await self._ask(endpoints.OFFER, {}, offer_id=offer_id)

    async def query(self, **filters: Any) -> OfferPage:
        return await self._ask(endpoints.QUERY, filters)

    async def ranking(self, **filters: Any) -> RankingPage:
        return await self._ask(endpoints.RANKING, filters)

    async def decide(self, **filters: Any) -> Decision:
        return await self._ask(endpoints.DECIDE, filters)

    async def gpus(self, **filters: Any) -> GpuCatalogue:
        return await self._ask(endpoints.GPUS, filters)

    async def price_history(self, **filters: Any) -> PriceHistory:
        return await self._ask(endpoints.PRICE_HISTORY, filters)

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
                    "GET", endpoints.API + endpoints.STREAM, params=params, headers=headers, timeout=httpx.Timeout(None)
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

    async def _ask(self, endpoint: endpoints.Endpoint, filters: dict[str, Any], **path: str) -> Any:
        return decode(endpoint.answer, await self._call(endpoint.method, *requests.arguments(endpoint, filters, path)))

    async def _call(self, method: str, path: str, arguments: dict[str, Any]) -> Any:
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
