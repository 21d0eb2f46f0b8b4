"""The synchronous client.

Filters are the list's query parameters as keyword arguments (``gpu=["H100"], min_gpus=8,
max_price=30, sort="topsis"``), passed through as the API defines them: the gateway checks them
and an unknown one is an ``InvalidRequest`` naming it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Self

import httpx

from gpubroker_client import endpoints, requests
from gpubroker_client.decoding import decode
from gpubroker_client.models import Decision, GpuCatalogue, Offer, OfferPage, PriceHistory, RankingPage


class Client:
    """``Client(url=None, api_key=None)``: the gateway at ``url`` (default ``GPUBROKER_URL``, else
    the local one), with ``api_key`` (default ``GPUBROKER_API_KEY``). Use it as a context manager,
    or ``close()`` it."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: requests.RetryPolicy = requests.RetryPolicy(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, headers = requests.settings(url, api_key)
        self.retry = retry
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def offers(self, **filters: Any) -> OfferPage:
        """One page of offers (``limit``, ``cursor`` and every filter and sort of the list)."""
        return self._ask(endpoints.OFFERS, filters)

    def iter_offers(self, **filters: Any) -> Iterator[Offer]:
        """Every matching offer exactly once, page after page by cursor (the gateway pins the order
        for the cursor's life, so changing prices neither repeat nor skip an offer)."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.offers(**filters, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def offer(self, offer_id: str) -> Offer:
        return self._ask(endpoints.OFFER, {}, offer_id=offer_id)

    def query(self, **filters: Any) -> OfferPage:
        """The list by ``POST /providers/query`` (the same filters as a JSON body)."""
        return self._ask(endpoints.QUERY, filters)

    def ranking(self, **filters: Any) -> RankingPage:
        """The best offers by TOPSIS, explained (weights ``w_price``, ``w_performance``, ...)."""
        return self._ask(endpoints.RANKING, filters)

    def decide(self, **filters: Any) -> Decision:
        """The TOPSIS choice among the matching offers, with runners-up (``alternatives``) and reasons."""
        return self._ask(endpoints.DECIDE, filters)

    def gpus(self, **filters: Any) -> GpuCatalogue:
        """The GPU catalogue (``vendor=...``)."""
        return self._ask(endpoints.GPUS, filters)

    def price_history(self, **filters: Any) -> PriceHistory:
        """Min, max and mean price per bucket, per GPU type and provider (``gpu``, ``provider``,
        ``since``, ``until``, ``bucket``)."""
        return self._ask(endpoints.PRICE_HISTORY, filters)

    def _ask(self, endpoint: endpoints.Endpoint, filters: dict[str, Any], **path: str) -> Any:
        return decode(endpoint.answer, self._call(endpoint.method, *requests.arguments(endpoint, filters, path)))

    def _call(self, method: str, path: str, arguments: dict[str, Any]) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **arguments)
            except httpx.TransportError as exc:
                wait = self.retry.wait_s(attempt, None)
                if wait is None:
                    raise requests.unreachable(self.url, exc) from None
            else:
                wait = self.retry.wait_s(attempt, response)
                if wait is None:
                    return requests.parse(response)
            time.sleep(wait)
            attempt += 1
