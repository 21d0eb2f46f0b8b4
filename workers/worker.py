"""The worker: polls one provider on its schedule and publishes what changed.

One worker runs one provider (``gpubroker worker --provider NAME``; embedded mode runs one per
installed plugin in the gateway's process). After each poll it diffs against the snapshot it
last published and publishes offers (compacted, tombstones for removals), price updates and a
provider event. A failed poll publishes only the failure event, so consumers keep serving the
last good data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from gpubroker.core import events
from gpubroker.core.adapter import PollContext, ProviderAdapter
from gpubroker.core.bus import Bus
from gpubroker.core.errors import CredentialsUnavailable, ProviderError, ProviderUnreachable
from gpubroker.core.logs import redact, register_secrets
from gpubroker.core.offer import Offer, Source
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.recordings import Recordings
from gpubroker.core.secrets import SecretStore
from gpubroker.core.settings import Settings
from gpubroker.workers import metrics
from gpubroker.workers.diff import Changes, diff
from gpubroker.workers.poll import Poller, PollResult, RetryPolicy
from gpubroker.workers.transport import HttpTransport, SnapshotTransport

log = logging.getLogger(__name__)

JITTER = 0.1


@dataclass(frozen=True)
class PollOutcome:
    ok: bool
    source: Source | None = None
    changes: Changes | None = None
    error: str | None = None


class ProviderWorker:
    """Use as ``async with ProviderWorker(...) as worker: await worker.run(stop)``."""

    def __init__(
        self,
        provider: RegisteredProvider,
        *,
        bus: Bus,
        secrets: SecretStore,
        settings: Settings,
        retry: RetryPolicy = RetryPolicy(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.info = provider.info
        self._adapter: ProviderAdapter = provider.adapter()
        self._bus = bus
        self._secrets = secrets
        self._settings = settings
        self._retry = retry
        self._now = now
        self._session: aiohttp.ClientSession | None = None
        self._published: dict[str, Offer] = {}
        self._source: Source | None = None
        self.healthy = True
        self.last_error: str | None = None

    async def __aenter__(self) -> ProviderWorker:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.info.concurrency_limit * 2),
            headers={"User-Agent": "gpubroker-worker"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a poll in flight finishes and is published first."""
        while not stop.is_set():
            await self.poll_once()
            interval = self.info.poll_interval_s * random.uniform(1 - JITTER, 1 + JITTER)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def poll_once(self) -> PollOutcome:
        try:
            credentials = await self._secrets.credentials(self.info.name)
        except CredentialsUnavailable as exc:
            return await self._failed("credentials", str(exc))
        register_secrets(credentials.secret_values())
        ctx = PollContext(self.info, self._now(), "live", credentials)
        try:
            try:
                result = await self._live_poller().poll(ctx)
            except ProviderUnreachable as exc:
                if not self._may_use_snapshot():
                    raise
                log.warning("%s is unreachable (%s); serving its bundled snapshot", self.info.name, exc.reason)
                result, ctx = await self._snapshot_poll(ctx)
        except ProviderError as exc:
            return await self._failed(type(exc).__name__, exc.reason)
        return await self._publish(result, ctx)

    def _live_poller(self) -> Poller:
        assert self._session is not None, "use the worker as an async context manager"
        base_url = self._settings.base_url_for(self.info.name, self.info.base_url)
        transport = HttpTransport(
            self._session, provider=self.info.name, base_url=base_url, timeout_s=self.info.request_timeout_s
        )
        return Poller(self._adapter, transport, retry=self._retry)

    def _may_use_snapshot(self) -> bool:
        return (
            self._settings.serve_snapshot_when_offline
            and self._adapter.recordings is not None
            and self._source != "live"
        )

    async def _snapshot_poll(self, live_ctx: PollContext) -> tuple[PollResult, PollContext]:
        assert self._adapter.recordings is not None
        recordings = Recordings(self._adapter.recordings)
        ctx = PollContext(self.info, recordings.captured_at, "snapshot", live_ctx.credentials)
        poller = Poller(
            self._adapter, SnapshotTransport(recordings, provider=self.info.name), retry=RetryPolicy(attempts=1)
        )
        return await poller.poll(ctx), ctx

    async def _publish(self, result: PollResult, ctx: PollContext) -> PollOutcome:
        name = self.info.name
        now = self._now()
        changes = diff(self._published, result.offers, now)
        for offer in changes.upserts:
            await self._bus.publish(events.OFFERS, offer.id, events.encode_offer(offer))
        for offer in changes.removed:
            await self._bus.publish(events.OFFERS, offer.id, None)
        for update in changes.price_updates:
            await self._bus.publish(events.PRICE_UPDATES, update.offer_id, update.encode())
        event = events.ProviderEvent(
            name,
            "poll.succeeded",
            now,
            {
                "poll_interval_s": self.info.poll_interval_s,
                "source": ctx.source,
                "data_as_of": ctx.observed_at.isoformat(),
                "offers": len(result.offers),
                "added_or_changed": len(changes.upserts),
                "removed": len(changes.removed),
                "price_changes": len(changes.price_updates),
                "rejected": result.rejected,
                "rejections": result.rejections,
                "calls": result.calls,
                "duration_ms": round(result.duration_s * 1000, 1),
            },
        )
        await self._bus.publish(events.PROVIDER_EVENTS, name, event.encode())
        await self._bus.flush()
        self._published = {offer.id: offer for offer in result.offers}
        self._source = ctx.source
        self.healthy, self.last_error = True, None
        metrics.POLLS.labels(name, "ok").inc()
        metrics.POLL_SECONDS.labels(name).observe(result.duration_s)
        metrics.OFFERS.labels(name).set(len(result.offers))
        metrics.REJECTED.labels(name).inc(result.rejected)
        log.info(
            "%s: %d offers from %s (%d added or changed, %d removed, %d rejected) in %.0f ms",
            name,
            len(result.offers),
            ctx.source,
            len(changes.upserts),
            len(changes.removed),
            result.rejected,
            result.duration_s * 1000,
        )
        return PollOutcome(True, ctx.source, changes)

    async def _failed(self, error_type: str, reason: str) -> PollOutcome:
        name = self.info.name
        reason = redact(reason)
        self.healthy, self.last_error = False, reason
        metrics.POLLS.labels(name, "failed").inc()
        log.error("%s: poll failed (%s): %s; keeping the last published data", name, error_type, reason)
        event = events.ProviderEvent(
            name,
            "poll.failed",
            self._now(),
            {
                "error_type": error_type,
                "reason": reason,
                "poll_interval_s": self.info.poll_interval_s,
            },
        )
        await self._bus.publish(events.PROVIDER_EVENTS, name, event.encode())
        await self._bus.flush()
        return PollOutcome(False, error=reason)
