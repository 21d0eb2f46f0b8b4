"""One poll of one provider: send its calls under its limits, follow pages, normalise.

A poll either returns every offer the provider lists or raises one ``ProviderError``: a
partial answer would make the diff announce removals that did not happen. Records that cannot
be normalised are counted and reported, not fatal, unless none of them can be.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
)
from gpubroker.core.offer import Offer
from gpubroker.workers.transport import Transport

log = logging.getLogger(__name__)

MAX_CALLS_PER_POLL = 2_000
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial_s: float = 0.5
    max_s: float = 10.0


@dataclass
class PollResult:
    offers: list[Offer]
    calls: int
    duration_s: float
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)


class Poller:
    def __init__(
        self,
        adapter: ProviderAdapter,
        transport: Transport,
        *,
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self._transport = transport
        self._retry = retry
        self._clock = clock
        self._limit = asyncio.Semaphore(adapter.info.concurrency_limit)

    @property
    def provider(self) -> str:
        return self._adapter.info.name

    async def poll(self, ctx: PollContext) -> PollResult:
        """Every offer the provider lists now, or one ``ProviderError`` free of credentials."""
        try:
            return await self._poll(ctx)
        except ProviderError as exc:
            raise exc.redact(ctx.credentials.secret_values()) from None

    async def _poll(self, ctx: PollContext) -> PollResult:
        started = self._clock()
        pending = [self._adapter.authorize(call, ctx.credentials) for call in self._adapter.calls(ctx)]
        seen: set[bytes] = set()
        records: list[Any] = []
        calls = 0
        while pending:
            batch = [call for call in pending if _remember(seen, call)]
            calls += len(batch)
            if calls > MAX_CALLS_PER_POLL:
                raise ProviderBadResponse(self.provider, f"pagination did not end after {MAX_CALLS_PER_POLL} calls")
            pages = await asyncio.gather(*(self._fetch(call, ctx) for call in batch))
            pending = [self._adapter.authorize(call, ctx.credentials) for page in pages for call in page.follow]
            records.extend(record for page in pages for record in page.records)
        result = self._normalise(records, ctx)
        result.calls = calls
        result.duration_s = self._clock() - started
        return result

    async def _fetch(self, call: Call, ctx: PollContext) -> Page:
        response = await self._send_with_retries(call, ctx.credentials.secret_values())
        try:
            return self._adapter.parse(response, ctx)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderBadResponse(
                self.provider, f"could not read the answer to {call.method} {call.path}: {type(exc).__name__}: {exc}"
            ) from None

    async def _send_with_retries(self, call: Call, secrets: tuple[str, ...]) -> Response:
        backoff = wait_exponential_jitter(
            multiplier=self._retry.initial_s, max=self._retry.max_s, jitter=self._retry.initial_s
        )

        def wait(state: Any) -> float:
            error = state.outcome.exception()
            retry_after = getattr(error, "retry_after", None) or 0.0
            return max(backoff(state), min(retry_after, MAX_RETRY_AFTER_S))

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                async with self._limit:
                    response = await self._transport.send(call)
                return _check_status(response, self.provider, secrets)
        raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises

    def _normalise(self, records: list[Any], ctx: PollContext) -> PollResult:
        offers: dict[str, Offer] = {}
        rejections: list[str] = []
        for record in records:
            try:
                offer = self._adapter.normalise(record, ctx)
            except (KeyError, ValueError, TypeError, ArithmeticError, ValidationError) as exc:
                rejections.append(_short(exc))
                continue
            if offer is not None:
                offers.setdefault(offer.id, offer)
        if records and not offers and rejections:
            raise ProviderBadResponse(
                self.provider, f"none of {len(records)} records could be normalised; first problem: {rejections[0]}"
            )
        if rejections:
            log.warning(
                "%s: %d of %d records rejected; first: %s", self.provider, len(rejections), len(records), rejections[0]
            )
        return PollResult(list(offers.values()), 0, 0.0, len(rejections), rejections[:10])


def _remember(seen: set[bytes], call: Call) -> bool:
    key = orjson.dumps([call.method, call.path, sorted(call.params.items()), call.json], option=orjson.OPT_SORT_KEYS)
    if key in seen:
        return False
    seen.add(key)
    return True


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ProviderRateLimited | ProviderTimeout | ProviderUnreachable):
        return True
    return isinstance(error, ProviderHTTPError) and error.status >= 500


def _check_status(response: Response, provider: str, secrets: tuple[str, ...]) -> Response:
    status = response.status
    if 200 <= status < 300:
        return response
    text = response.body[:4096].decode("utf-8", "replace")
    for value in secrets:  # before cutting, so no part of an echoed credential survives
        text = text.replace(value, "***")
    excerpt = text[:200].strip() or "(empty body)"
    where = f"{response.call.method} {response.call.path}"
    if status == 429:
        raise ProviderRateLimited(provider, _retry_after(response.headers), f"{where} was rate limited: {excerpt}")
    if status in (401, 403):
        raise ProviderAuthError(provider, status, f"{where} rejected the credentials")
    raise ProviderHTTPError(provider, status, f"{where}: {excerpt}")


def _retry_after(headers: Any) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
