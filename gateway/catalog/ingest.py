"""Consuming the bus into the catalogue, and recording what must outlive the process.

On start the offers are first read from the compacted topic up to its end (``caught_up``),
then every topic is followed from its beginning; ``settled`` tells when what was on the topics
then has been applied (``following``), so that the instance reports ready with every provider's
state in place (not only the offers) and the cache can be warmed for the rebuilt catalogue.
Records are applied in order; applying one twice changes nothing. A record that cannot be
decoded is logged and skipped (never fatal: one bad producer must not stop the gateway).
Provider status, health checks and price observations are written to the database in batches,
off the consuming loop's hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from opentelemetry.trace import SpanKind

from gpubroker.core import events, tracing
from gpubroker.core.bus import Bus, BusError, Record
from gpubroker.core.offer import Offer
from gpubroker.core.price_changes import offer_price_changed
from gpubroker.gateway import db
from gpubroker.gateway.catalog.store import Catalog, ProviderState

log = logging.getLogger(__name__)
_TRACER = tracing.tracer("gpubroker.gateway.ingest")

TOPICS = (events.OFFERS, events.PROVIDER_EVENTS, events.PRICE_ALERTS)
FLUSH_EVERY_S = 0.5


class Ingest:
    def __init__(
        self,
        bus: Bus,
        catalog: Catalog,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_offer: Callable[[Record, Offer | None, Offer | None], None] = lambda *_: None,
        on_provider: Callable[[Record, ProviderState], None] = lambda *_: None,
        on_alert: Callable[[Record, events.PriceAlert], None] = lambda *_: None,
        on_notice: Callable[[Record, events.AccountNotice], None] = lambda *_: None,
    ) -> None:
        self._bus = bus
        self._catalog = catalog
        self._on_change = on_change
        self._on_offer = on_offer
        self._on_provider = on_provider
        self._on_alert = on_alert
        self._on_notice = on_notice
        self._observations: list[dict[str, object]] = []
        self._statuses: dict[str, ProviderState] = {}
        self._checks: list[dict[str, object]] = []
        self.caught_up = asyncio.Event()
        self.following = asyncio.Event()
        self._flushing = asyncio.Lock()  # a flush returns only once everything before it is written
        self.last_record_at = time.monotonic()
        self.records = 0
        self.rejected = 0

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            try:
                for record in (await self._bus.read_compacted(events.OFFERS)).values():
                    self.apply(record)
            except BusError as exc:
                log.warning("could not read the compacted offers (%s); following the topics instead", exc)
            self.caught_up.set()
            async for record in self._bus.subscribe(TOPICS, from_beginning=True, caught_up=self.following):
                self.apply(record)
                if self.following.is_set():
                    # A broker back after an outage hands over its producers' backlog in one
                    # fetch: applied without a turn for the subscribers, it would fill their
                    # queues before any could send, and each would be told of a gap for nothing.
                    await asyncio.sleep(0)
        finally:
            flusher.cancel()
            await self.flush()

    async def settled(self, *, within_s: float = 30.0) -> None:
        """Wait until the compacted offers are in and the topics' backlog has been applied, or
        ``within_s`` has passed: the catalogue then matches what instances that have been
        running for a while hold. (Waiting for a pause in the records instead let an instance
        whose consumer took a moment to start report ready with no provider's state.)"""
        await self.caught_up.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.following.wait(), within_s)

    def apply(self, record: Record) -> None:
        """Take one record in; when spans are exported, as part of the trace of the poll that
        published it (its ``traceparent`` header), so the pushes it causes join that trace too."""
        parent = tracing.context_from(record.headers) if tracing.exporting() else None
        if parent is None:
            return self._apply(record)
        with _TRACER.start_as_current_span(f"ingest {record.topic}", context=parent, kind=SpanKind.CONSUMER):
            self._apply(record)

    def _apply(self, record: Record) -> None:
        self.records += 1
        self.last_record_at = time.monotonic()
        try:
            if record.topic == events.OFFERS:
                self._apply_offer(record)
            elif record.topic == events.PROVIDER_EVENTS and record.value is not None:
                event = events.ProviderEvent.decode(record.value)
                state = self._catalog.apply_event(event)
                self._statuses[state.name] = state
                self._on_provider(record, state)
                self._checks.append(
                    {
                        "provider": event.provider,
                        "event_type": event.event_type,
                        "status": state.status,
                        "error": state.last_error if event.event_type == "poll.failed" else None,
                        "at": event.at,
                    }
                )
            elif record.topic == events.PRICE_ALERTS and record.value is not None:
                alert = events.decode_alert(record.value)
                if isinstance(alert, events.AccountNotice):
                    self._on_notice(record, alert)
                else:
                    self._on_alert(record, alert)
                return  # news for subscribers; the catalogue is unchanged
        except ValueError as exc:
            self.rejected += 1
            log.error("skipping undecodable record on %s at offset %s: %s", record.topic, record.offset, exc)
            return
        self._on_change()

    def _apply_offer(self, record: Record) -> None:
        if record.key is None:
            raise ValueError("offer record without a key")
        offer = None if record.value is None else events.decode_offer(record.value)
        previous = self._catalog.apply_offer(record.key, offer)
        self._on_offer(record, previous, offer)
        if offer is None or offer.price_per_hour is None or offer.quarantined is not None:
            return
        # The history holds known, trusted prices: an offer's first one, and each move between two.
        if (
            previous is None
            or previous.price_per_hour is None
            or previous.quarantined is not None
            or offer_price_changed(previous, offer)
        ):
            self._observations.append(
                {
                    "offer_id": offer.id,
                    "provider": offer.provider,
                    "gpu_type": offer.gpu_type,
                    "region": offer.region,
                    "price_per_hour": offer.price_per_hour,
                    "observed_at": offer.last_updated,
                }
            )

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush()
            except Exception:
                log.exception("could not write provider status and price history; will retry")

    async def flush(self) -> None:
        async with self._flushing:
            await self._write_pending()

    async def _write_pending(self) -> None:
        observations, self._observations = self._observations, []
        checks, self._checks = self._checks, []
        statuses, self._statuses = self._statuses, {}
        if observations or checks or statuses:
            try:
                await db.run(_write, observations, checks, list(statuses.values()))
            except Exception:
                self._observations[:0] = observations  # keep them for the next flush
                self._checks[:0] = checks
                for name, state in statuses.items():
                    self._statuses.setdefault(name, state)
                raise


def _write(
    observations: list[dict[str, object]], checks: list[dict[str, object]], statuses: list[ProviderState]
) -> None:
    from django.db import transaction

    from gpubroker.gateway.models import HealthCheck, PriceObservation, ProviderStatus

    with transaction.atomic():
        PriceObservation.objects.bulk_create(
            [PriceObservation(**row) for row in observations], ignore_conflicts=True, batch_size=1000
        )
        HealthCheck.objects.bulk_create([HealthCheck(**row) for row in checks], ignore_conflicts=True, batch_size=1000)
        for state in statuses:
            ProviderStatus.objects.update_or_create(
                name=state.name,
                defaults={
                    "status": state.status,
                    "source": state.source,
                    "data_as_of": state.data_as_of,
                    "last_poll_at": state.last_poll_at,
                    "last_success_at": state.last_success_at,
                    "last_error": state.last_error,
                    "offers": state.offers,
                },
            )
