"""One poll of one provider: send its calls under its limits, follow pages, normalise.

A poll either returns every offer the provider lists or raises one ``ProviderError``: a
partial answer would make the diff announce removals that did not happen. Records that cannot
be normalised are counted and reported, not fatal, unless none of them can be.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.balance import WeightedRoundRobin
from gpubroker.core.circuit import CircuitBreaker
from gpubroker.core.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderHTTPError,
    ProviderPluginFault,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
)
from gpubroker.core.offer import Offer
from gpubroker.core.throttle import TokenBucket
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


@dataclass(frozen=True)
class Shard:
    """This replica's share of a provider's work: calls whose key hashes to ``index`` mod ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: the index must be in 0..{self.count - 1}")

    def owns(self, call: Call) -> bool:
        return (
            self.count == 1
            or int.from_bytes(hashlib.blake2b(_call_key(call), digest_size=8).digest()) % self.count == self.index
        )


@dataclass
class Guards:
    """The per-provider state that outlives one poll: rate limit, circuit breaker, weights."""

    bucket: TokenBucket
    breaker: CircuitBreaker
    balance: WeightedRoundRobin = field(default_factory=WeightedRoundRobin)

    @classmethod
    def for_provider(cls, adapter: ProviderAdapter, **breaker_options: Any) -> Guards:
        info = adapter.info
        return cls(TokenBucket(info.rate_limit_per_minute), CircuitBreaker(info.name, **breaker_options))


class Poller:
    """Runs polls of one provider. At most ``concurrency_limit`` calls are in flight; the
    next call is chosen by weighted round-robin over targets (a call's ``tag``, else its path),
    which is also where a burst of follow-up pages waits: nothing is sent faster than the
    window and the provider's rate limit allow."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        transport: Transport,
        *,
        retry: RetryPolicy = RetryPolicy(),
        guards: Guards | None = None,
        shard: Shard = Shard(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self._transport = transport
        self._retry = retry
        self.guards = guards or Guards.for_provider(adapter)
        self._shard = shard
        self._clock = clock

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
        try:
            first = [call for call in self._adapter.calls(ctx) if self._shard.owns(call)]
        except Exception as exc:
            raise ProviderPluginFault(self.provider, f"calls() raised {type(exc).__name__}: {exc}") from None
        records, calls = await self._run(first, ctx)
        result = self._normalise(records, ctx)
        result.calls = calls
        result.duration_s = self._clock() - started
        return result

    async def _run(self, first: list[Call], ctx: PollContext) -> tuple[list[Any], int]:
        pending: dict[str, deque[Call]] = {}
        seen: set[bytes] = set()
        calls = 0

        def queue(call: Call) -> None:
            nonlocal calls
            if _remember(seen, call):
                calls += 1
                if calls > MAX_CALLS_PER_POLL:
                    raise ProviderBadResponse(self.provider, f"pagination did not end after {MAX_CALLS_PER_POLL} calls")
                pending.setdefault(call.tag or call.path, deque()).append(
                    self._adapter.authorize(call, ctx.credentials)
                )

        for call in first:
            queue(call)
        records: list[Any] = []
        in_flight: dict[asyncio.Task[Page], str] = {}
        try:
            while pending or in_flight:
                while pending and len(in_flight) < self._adapter.info.concurrency_limit:
                    target = self.guards.balance.pick(pending)
                    call = pending[target].popleft()
                    if not pending[target]:
                        del pending[target]
                    in_flight[asyncio.create_task(self._fetch(call, target, ctx))] = target
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
                    page = task.result()
                    records.extend(page.records)
                    for follow in page.follow:
                        queue(follow)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        return records, calls

    def _authorize(self, call: Call, ctx: PollContext) -> Call:
        try:
            return self._adapter.authorize(call, ctx.credentials)
        except Exception as exc:
            raise ProviderPluginFault(self.provider, f"authorize() raised {type(exc).__name__}: {exc}") from None

    async def _fetch(self, call: Call, target: str, ctx: PollContext) -> Page:
        response = await self._send_with_retries(call, target, ctx.credentials.secret_values())
        try:
            return self._adapter.parse(response, ctx)
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderBadResponse(
                self.provider, f"could not read the answer to {call.method} {call.path}: {type(exc).__name__}: {exc}"
            ) from None

    async def _send_with_retries(self, call: Call, target: str, secrets: tuple[str, ...]) -> Response:
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
            retry=retry_if_exception(retryable),
            reraise=True,
        ):
            with attempt:
                return await self._send_once(call, target, secrets)
        raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises

    async def _send_once(self, call: Call, target: str, secrets: tuple[str, ...]) -> Response:
        guards = self.guards
        guards.breaker.before_request()
        await guards.bucket.acquire()
        started = self._clock()
        try:
            response = check_status(await self._transport.send(call), self.provider, secrets)
        except ProviderError as exc:
            counts = retryable(exc)  # what is worth retrying is what says the provider is unwell
            guards.breaker.record(success=not counts)
            guards.balance.observe(target, ok=not counts, latency_s=self._clock() - started)
            raise
        guards.breaker.record(success=True)
        guards.balance.observe(target, ok=True, latency_s=self._clock() - started)
        return response

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


def _call_key(call: Call) -> bytes:
    return orjson.dumps([call.method, call.path, sorted(call.params.items()), call.json], option=orjson.OPT_SORT_KEYS)


def _remember(seen: set[bytes], call: Call) -> bool:
    key = _call_key(call)
    if key in seen:
        return False
    seen.add(key)
    return True


def retryable(error: BaseException) -> bool:
    """Whether a failure says the provider is unwell for now (worth another try)."""
    if isinstance(error, ProviderRateLimited | ProviderTimeout | ProviderUnreachable):
        return True
    return isinstance(error, ProviderHTTPError) and error.status >= 500


def check_status(response: Response, provider: str, secrets: tuple[str, ...]) -> Response:
    """The response when its status is a success, else its typed error (credentials redacted)."""
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
        raise ProviderAuthError(provider, status, f"{where} rejected the credentials: {excerpt}")
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
