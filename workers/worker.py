"""The worker: polls one provider on its schedule and publishes what changed.

One worker runs one provider, or one shard of it (``gpubroker worker --provider NAME``; embedded
mode runs one per installed plugin in the gateway's process). After each poll it diffs against
the snapshot it last published and writes offers (tombstones for removals), price updates and a
provider event to its outbox, which delivers them to the bus. A failed poll publishes only the
failure event, so consumers keep serving the last good data.

The published snapshot is rebuilt at start from the compacted offers topic plus whatever still
waits in the outbox, so a restart neither re-announces every offer nor misses a removal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gpubroker.core import events
from gpubroker.core.adapter import PollContext, ProviderAdapter
from gpubroker.core.bus import Bus, Record
from gpubroker.core.circuit import CircuitState
from gpubroker.core.errors import CredentialsUnavailable, ProviderError, ProviderUnreachable
from gpubroker.core.logs import redact, register_secrets
from gpubroker.core.offer import Offer, Source
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.provider import Credentials
from gpubroker.core.recordings import Recordings
from gpubroker.core.sanity import PriceGuard
from gpubroker.core.secrets import SecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.tracing import configure as configure_tracing
from gpubroker.core.tracing import context_headers, tracer
from gpubroker.workers import metrics
from gpubroker.workers.diff import SnapshotDiff, diff
from gpubroker.workers.health import HealthFile
from gpubroker.workers.outbox import Outbox, Pending
from gpubroker.workers.poll import Guards, Poller, PollResult, RetryPolicy, Shard
from gpubroker.workers.transport import HttpTransport, SnapshotTransport

log = logging.getLogger(__name__)

JITTER = 0.1
SHARD_HEADER = "gpubroker-shard"
OUTBOX_BACKOFF_S = 5.0
OUTBOX_REPORT_S = 5.0
STARTUP_DRAIN_S = 5.0
SHUTDOWN_DRAIN_S = 10.0
MAX_QUARANTINED_REPORTED = 50
"""A provider event names at most this many quarantined offers (and counts them all)."""


def state_name(provider: str, shard: Shard) -> str:
    """The file-name stem of a worker's outbox and health report."""
    return provider if shard.count == 1 else f"{provider}-{shard.index}-of-{shard.count}"


@dataclass(frozen=True)
class PollOutcome:
    ok: bool
    source: Source | None = None
    changes: SnapshotDiff | None = None
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
        shard: Shard = Shard(),
        state_dir: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        breaker_options: dict[str, Any] | None = None,
    ) -> None:
        interval = settings.poll_intervals.get(provider.info.name)
        self.info = (
            provider.info if interval is None else provider.info.model_copy(update={"poll_interval_s": interval})
        )
        self._adapter: ProviderAdapter = provider.adapter()
        self._bus = bus
        self._secrets = secrets
        self._settings = settings
        self.interval_s = self.info.poll_interval_s
        """Seconds between polls: the plugin's, unless ``GPUBROKER_POLL_INTERVALS`` names another."""
        self._retry = retry
        self._shard = shard
        self._now = now
        configure_tracing(f"gpubroker-worker-{self.info.name}")  # a no-op where the process did already
        self._tracer = tracer("gpubroker.worker")
        self._transitions: list[tuple[CircuitState, CircuitState]] = []
        self.guards = Guards.for_provider(self._adapter, on_transition=self._circuit_moved, **(breaker_options or {}))
        name = state_name(self.info.name, shard)
        state = state_dir or settings.data_dir / "workers"
        self.outbox = Outbox(state / f"{name}.outbox.sqlite3", bus)
        self.health = HealthFile(state / f"{name}.health.json")
        self._shard_tag = f"{shard.index}/{shard.count}".encode()
        self._session: aiohttp.ClientSession | None = None
        self._poller: Poller | None = None
        self._published: dict[str, Offer] = {}
        self._guard = PriceGuard()
        self._source: Source | None = None
        self.healthy = True
        self.last_error: str | None = None
        self.credentials_note: str | None = None
        """Why credentials come from the cache (the vault is away), or None."""
        self._polled_at: float | None = None

    async def __aenter__(self) -> ProviderWorker:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.info.concurrency_limit * 2),
            headers={"User-Agent": "gpubroker-worker"},
        )
        base_url = self._settings.base_url_for(self.info.name, self.info.base_url)
        transport = HttpTransport(
            self._session, provider=self.info.name, base_url=base_url, timeout_s=self.info.request_timeout_s
        )
        self._poller = Poller(self._adapter, transport, retry=self._retry, guards=self.guards, shard=self._shard)
        try:
            await self._restore()
            await self.outbox.drain(timeout_s=STARTUP_DRAIN_S)  # what an earlier run left goes first
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not await self.outbox.drain(timeout_s=SHUTDOWN_DRAIN_S):
            log.warning("%s: %d records stay in the outbox for the next start", self.info.name, self.outbox.pending)
        self.outbox.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _restore(self) -> None:
        """Rebuild the published snapshot: the compacted topic, then what the outbox still holds."""
        records = [
            record
            for record in (await self._bus.read_compacted(events.OFFERS)).values()
            if dict(record.headers).get(SHARD_HEADER, self._shard_tag) == self._shard_tag
        ]
        records += [
            Record(topic, key, value, headers=headers)
            for topic, key, value, headers in self.outbox.waiting(events.OFFERS)
        ]
        for record in records:
            if record.key is None:
                continue
            try:
                offer = None if record.value is None else events.decode_offer(record.value)
            except ValueError:
                continue  # not ours to judge: the gateway reports undecodable records
            if offer is None:
                self._published.pop(record.key, None)
            elif offer.provider == self.info.name:
                self._published[record.key] = offer
        self._source = next((offer.source for offer in self._published.values()), None)
        self._guard = PriceGuard(self._published.values())
        if self._published:
            log.info("%s: resumed with %d published offers", self.info.name, len(self._published))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a poll in flight finishes and is published first. The
        outbox delivers on its own meanwhile (within seconds of the bus's return, whatever the
        poll interval), and the health report follows it."""
        delivering = asyncio.create_task(self.outbox.run(stop), name=f"outbox:{self.info.name}")
        reporting = asyncio.create_task(self._report_outbox(stop), name=f"outbox-report:{self.info.name}")
        try:
            await self._poll_until(stop)
        finally:
            for task in (delivering, reporting):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.outbox.full and not await self.outbox.drain():
                log.warning("%s: outbox full (%d records); not polling until the bus takes them",
                            self.info.name, self.outbox.pending)  # fmt: skip
                interval = OUTBOX_BACKOFF_S
            else:
                try:
                    await self.poll_once()
                except Exception:  # a plugin bug must not end the worker; report and poll again
                    log.exception("%s: poll crashed", self.info.name)
                    self._set_health(False, "poll crashed; see the worker's log")
                interval = self.interval_s * random.uniform(1 - JITTER, 1 + JITTER)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def poll_once(self) -> PollOutcome:
        with self._tracer.start_as_current_span(f"poll {self.info.name}"):
            try:
                credentials = await self._secrets.credentials(self.info.name)
            except CredentialsUnavailable as exc:
                return await self._failed("CredentialsUnavailable", str(exc))
            self._note_credentials(self._secrets.cache_note(self.info.name))
            register_secrets(credentials.secret_values())
            ctx = PollContext(self.info, self._now(), "live", credentials)
            missing = [spec.name for spec in self.info.credentials if spec.required and spec.name not in credentials]
            try:
                if missing:
                    raise ProviderUnreachable(self.info.name, f"credentials not configured: {', '.join(missing)}")
                assert self._poller is not None, "use the worker as an async context manager"
                result = await self._poller.poll(ctx)
            except ProviderUnreachable as exc:
                if not self._may_use_snapshot():
                    return await self._failed(type(exc).__name__, exc.reason)
                log.warning("%s: %s; serving its bundled snapshot", self.info.name, exc.reason)
                try:
                    result, ctx = await self._snapshot_poll()
                except ProviderError as snapshot_error:
                    return await self._failed(type(snapshot_error).__name__, snapshot_error.reason)
            except ProviderError as exc:
                return await self._failed(type(exc).__name__, exc.reason)
            return await self._publish(result, ctx)

    def _may_use_snapshot(self) -> bool:
        return (
            self._settings.serve_snapshot_when_offline
            and self._adapter.recordings is not None
            and self._source != "live"
        )

    async def _snapshot_poll(self) -> tuple[PollResult, PollContext]:
        assert self._adapter.recordings is not None
        recordings = Recordings(self._adapter.recordings)
        # Nothing is sent anywhere: placeholders let the plugin build its calls as usual.
        placeholders = Credentials({spec.name: "snapshot" for spec in self.info.credentials})
        ctx = PollContext(self.info, recordings.captured_at, "snapshot", placeholders)
        transport = SnapshotTransport(recordings, provider=self.info.name)
        poller = Poller(self._adapter, transport, retry=RetryPolicy(attempts=1), shard=self._shard)
        return await poller.poll(ctx), ctx

    async def _publish(self, result: PollResult, ctx: PollContext) -> PollOutcome:
        name = self.info.name
        offers, quarantined = self._guard.check(result.offers)
        changes = diff(self._published, offers, self._now())
        headers = (*context_headers(), (SHARD_HEADER, self._shard_tag))
        records: list[Pending] = [(events.OFFERS, o.id, events.encode_offer(o), headers) for o in changes.upserts]
        records += [(events.OFFERS, o.id, None, headers) for o in changes.removed]
        records += [(events.PRICE_UPDATES, u.offer_id, u.encode(), headers) for u in changes.price_updates]
        event = self._event(
            "poll.succeeded",
            source=ctx.source,
            data_as_of=ctx.observed_at.isoformat(),
            offers=len(result.offers),
            added_or_changed=len(changes.upserts),
            removed=len(changes.removed),
            price_changes=len(changes.price_updates),
            rejected=result.rejected,
            rejections=result.rejections,
            quarantined=len(quarantined),
            calls=result.calls,
            duration_ms=round(result.duration_s * 1000, 1),
        )
        if quarantined:
            records.append(
                self._event(
                    "prices.quarantined",
                    count=len(quarantined),
                    offers=[q.to_json() for q in quarantined[:MAX_QUARANTINED_REPORTED]],
                )
            )
            metrics.QUARANTINED.labels(name).inc(len(quarantined))
            first = quarantined[0]
            log.warning("%s: %d offers quarantined by the price sanity guard, e.g. %s: %s",
                        name, len(quarantined), first.offer.provider_offer_id, first.reason)  # fmt: skip
        await self._deliver([*records, event])
        self._published = {offer.id: offer for offer in offers}
        self._source = ctx.source
        self._set_health(True, None)
        metrics.POLLS.labels(name, "ok").inc()
        metrics.POLL_SECONDS.labels(name).observe(result.duration_s)
        metrics.OFFERS.labels(name).set(len(result.offers))
        metrics.REJECTED.labels(name).inc(result.rejected)
        log.info(
            "%s: %d offers from %s (%d added or changed, %d removed, %d rejected) in %.0f ms",
            name, len(result.offers), ctx.source, len(changes.upserts), len(changes.removed), result.rejected,
            result.duration_s * 1000,
        )  # fmt: skip
        return PollOutcome(True, ctx.source, changes)

    async def _failed(self, error_type: str, reason: str) -> PollOutcome:
        reason = redact(reason)
        self._set_health(False, reason)
        metrics.POLLS.labels(self.info.name, "failed").inc()
        log.error("%s: poll failed (%s): %s; keeping the last published data", self.info.name, error_type, reason)
        await self._deliver([self._event("poll.failed", error_type=error_type, reason=reason)])
        return PollOutcome(False, error=reason)

    def _event(self, event_type: str, **data: Any) -> Pending:
        data |= {"poll_interval_s": self.interval_s, "circuit": self.guards.breaker.state.value}
        event = events.ProviderEvent(self.info.name, event_type, self._now(), data)
        return (events.PROVIDER_EVENTS, self.info.name, event.encode(), context_headers())

    async def _deliver(self, records: list[Pending]) -> None:
        transitions, self._transitions = self._transitions, []
        circuit_events = [self._event(f"circuit.{new.value}", previous=old.value) for old, new in transitions]
        await self.outbox.send([*circuit_events, *records])

    def _circuit_moved(self, old: CircuitState, new: CircuitState) -> None:
        self._transitions.append((old, new))
        metrics.CIRCUIT_STATE.labels(self.info.name).set(list(CircuitState).index(new))
        metrics.CIRCUIT_TRANSITIONS.labels(self.info.name, new.value).inc()
        log.warning("%s: circuit %s -> %s", self.info.name, old.value, new.value)

    def _note_credentials(self, note: str | None) -> None:
        """Say, once per change, when credentials come from the cache because the vault is away."""
        if note is not None and self.credentials_note is None:
            log.warning("%s: %s", self.info.name, note)
        elif note is None and self.credentials_note is not None:
            log.info("%s: credentials read from the vault again", self.info.name)
        self.credentials_note = note

    def _set_health(self, healthy: bool, reason: str | None, *, polled: bool = True) -> None:
        self.healthy, self.last_error = healthy, reason
        if polled:
            self._polled_at = time.time()
        self.health.write(
            healthy=healthy,
            reason=reason,
            interval_s=self.interval_s,
            outbox=self.outbox.pending,
            outbox_oldest_s=self.outbox.oldest_age_s(),
            credentials=self.credentials_note,
            polled_at=self._polled_at,
        )
        metrics.OUTBOX.labels(self.info.name).set(self.outbox.pending)
        metrics.OUTBOX_OLDEST.labels(self.info.name).set(self.outbox.oldest_age_s())

    async def _report_outbox(self, stop: asyncio.Event) -> None:
        """Keep the health report and metrics current about the outbox between polls (a worker
        polled hourly would otherwise report a backlog an hour late)."""
        reported = (self.outbox.pending, 0)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=OUTBOX_REPORT_S)
            now = (self.outbox.pending, int(self.outbox.oldest_age_s()) // int(OUTBOX_REPORT_S))
            if now != reported and self._polled_at is not None:
                self._set_health(self.healthy, self.last_error, polled=False)
                reported = now
