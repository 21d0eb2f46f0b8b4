"""The webhook delivery service: what the ``webhook_delivery`` DAG's task runs.

It consumes ``gpubroker.webhooks`` in its own consumer group and, for each batch of records:

1. registers the deliveries with the gateway (their ids and targets), which answers send or
   skip (a delivery it has already seen is skipped: the notifier made it twice, or this batch
   is being consumed again after a restart);
2. checks each target where it stands now (``core.webtargets``: a name that resolves to a
   private, loopback or link-local address is refused and never sent; the connection then goes
   to the very addresses that were checked, so the name cannot be re-pointed in between);
3. POSTs each delivery exactly as the gateway signed it, concurrently, never following redirects;
4. reports every attempt (status, latency, number) to the gateway, which decides what follows
   (``core.webhook_policy``: a later attempt, a final failure, the dead-letter topic);
5. and only then commits the batch's offsets (batches overlap, a few at a time, but are
   committed in order).

Between batches it claims the retries that are due and attempts them the same way. A crash
between a POST and its report makes the delivery be sent again on restart, with the same
``X-GPUBROKER-Delivery`` id: a receiver that deduplicates by that id sees each delivery once; one
that does not may see a delivery twice for each delivery in flight when the task stopped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gpubroker.core import events, webtargets
from gpubroker_dags.gateway import Gateway

log = logging.getLogger(__name__)

GROUP = "gpubroker-webhook-delivery"
MAX_REQUEST_BYTES = 200 * 1024
"""Below the gateway's request-body limit (256 KiB)."""
MAX_PER_REQUEST = 500


@dataclass(frozen=True)
class Options:
    bootstrap: str
    allowed: Sequence[webtargets.Network] = ()
    concurrency: int = 32
    timeout_s: float = 10.0
    batch: int = 500
    overlap: int = 4
    """Batches in flight at once: sending one while earlier ones are being reported."""
    claim_every_s: float = 1.0
    group: str = GROUP


@dataclass
class Tally:
    """What one run did, for the task's log and return value."""

    consumed: int = 0
    sent: int = 0
    delivered: int = 0
    skipped: int = 0
    refused: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if name != "latencies_ms"}


@dataclass(frozen=True)
class Outcome:
    delivery: events.WebhookDelivery
    attempt: int
    at: datetime
    status_code: int | None
    error_kind: str | None
    error: str | None
    latency_ms: float | None

    def report(self) -> dict[str, Any]:
        """The attempt for the gateway; one that did not deliver carries the signed request, which
        the gateway keeps for the attempts that follow (a delivered one never needs it)."""
        report: dict[str, Any] = {
            "delivery_id": self.delivery.delivery_id,
            "attempt": self.attempt,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "error_kind": self.error_kind,
            "error": self.error,
            "latency_ms": self.latency_ms,
        }
        if self.status_code is None or not 200 <= self.status_code < 300:
            report |= {"body": self.delivery.body.decode(), "headers": self.delivery.headers}
        return report


class PinnedResolver(AbstractResolver):
    """Answers only with the addresses a target was checked at: the connection goes where the
    check looked, whatever the name resolves to a moment later."""

    def __init__(self) -> None:
        self.pinned: dict[str, list[str]] = {}

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[ResolveResult]:
        addresses = self.pinned.get(host.lower().rstrip("."))
        if not addresses:
            raise OSError(f"{host} was not checked before connecting")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class DeliveryService:
    def __init__(self, gateway: Gateway, options: Options, resolver: webtargets.Resolver | None = None) -> None:
        self._gateway = gateway
        self._options = options
        self._resolve = resolver or webtargets.system_resolver
        self._pinned = PinnedResolver()
        self.tally = Tally()

    async def run(self, run_for_s: float) -> Tally:
        """Deliver for ``run_for_s`` seconds, then commit and return (the DAG runs again)."""
        consumer = AIOKafkaConsumer(
            events.WEBHOOKS,
            bootstrap_servers=self._options.bootstrap,
            group_id=self._options.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._options.batch,
        )
        producer = AIOKafkaProducer(bootstrap_servers=self._options.bootstrap, acks="all", enable_idempotence=True)
        connector = aiohttp.TCPConnector(limit=self._options.concurrency, resolver=self._pinned, use_dns_cache=False)
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._options.timeout_s), auto_decompress=False
        )
        await consumer.start()
        await producer.start()
        deadline = time.monotonic() + run_for_s
        claimed_at = 0.0
        # Batches overlap (the next is sent while the last is being reported); offsets are
        # committed in order, each once its batch is recorded.
        inflight: deque[tuple[asyncio.Task[None], dict[TopicPartition, int]]] = deque()
        try:
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._options.batch)
                records = [record for partition in batches.values() for record in partition]
                if records:
                    handled = asyncio.create_task(self._from_topic(session, producer, records))
                    inflight.append((handled, _next_offsets(records)))
                while inflight and (inflight[0][0].done() or len(inflight) >= self._options.overlap):
                    handled, offsets = inflight.popleft()
                    await handled
                    await consumer.commit(offsets)
                if time.monotonic() - claimed_at >= self._options.claim_every_s:
                    claimed_at = time.monotonic()
                    await self._retries(session)
            while inflight:
                handled, offsets = inflight.popleft()
                await handled
                await consumer.commit(offsets)
        finally:
            for handled, _ in inflight:
                handled.cancel()
            await session.close()
            await producer.stop()
            await consumer.stop()
        return self.tally

    async def _from_topic(self, session: aiohttp.ClientSession, producer: AIOKafkaProducer, records: list[Any]) -> None:
        self.tally.consumed += len(records)
        deliveries: dict[str, events.WebhookDelivery] = {}
        for record in records:
            try:
                delivery = events.WebhookDelivery.decode(record.value or b"")
            except ValueError as exc:  # it would fail for ever: set aside, never lost
                log.error("undecodable delivery at %s/%s: %s", record.partition, record.offset, exc)
                await producer.send_and_wait(events.dead_letter_topic(events.WEBHOOKS), record.value, key=record.key)
                continue
            deliveries.setdefault(delivery.delivery_id, delivery)
        if not deliveries:
            return
        answers = []
        for chunk in _chunks([_wire(delivery) for delivery in deliveries.values()]):
            answers += (await self._gateway.post("/webhooks/deliveries", {"deliveries": chunk}))["deliveries"]
        to_send = [(deliveries[a["delivery_id"]], a["attempt"]) for a in answers if a["action"] == "send"]
        self.tally.skipped += len(answers) - len(to_send)
        await self._attempt_all(session, to_send)

    async def _retries(self, session: aiohttp.ClientSession) -> None:
        due = (await self._gateway.post("/webhooks/deliveries/due", {"limit": self._options.batch}))["deliveries"]
        if due:
            self.tally.retried += len(due)
            await self._attempt_all(session, [(_from_wire(item), int(item["attempt"])) for item in due])

    async def _attempt_all(
        self, session: aiohttp.ClientSession, deliveries: Iterable[tuple[events.WebhookDelivery, int]]
    ) -> None:
        checked: dict[str, str | None] = {}  # host -> why it is refused, once per batch
        outcomes = await asyncio.gather(
            *(self._attempt(session, delivery, number, checked) for delivery, number in deliveries)
        )
        if not outcomes:
            return
        for chunk in _chunks([outcome.report() for outcome in outcomes]):
            result = await self._gateway.post("/webhooks/attempts", {"attempts": chunk})
            self.tally.dead_lettered += result["dead_lettered"]

    async def _attempt(
        self, session: aiohttp.ClientSession, delivery: events.WebhookDelivery, number: int, checked: dict[str, Any]
    ) -> Outcome:
        started_at = datetime.now(UTC)
        refusal = await self._check(delivery.url, checked)
        if refusal is not None:
            self.tally.refused += 1
            log.warning("delivery %s not sent: %s", delivery.delivery_id, refusal)
            return Outcome(delivery, number, started_at, None, "refused", refusal, None)
        self.tally.sent += 1
        started = time.perf_counter()
        status, kind, error = None, None, None
        try:
            async with session.post(
                delivery.url, data=delivery.body, headers=delivery.headers, allow_redirects=False
            ) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            kind, error = "timeout", f"no answer within {self._options.timeout_s:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            kind, error = "connection", f"{type(exc).__name__}: {exc}"[:300]
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if status is not None and 200 <= status < 300:
            self.tally.delivered += 1
            self.tally.latencies_ms.append(latency_ms)
        else:
            self.tally.failed += 1
        return Outcome(delivery, number, started_at, status, kind, error, latency_ms)

    async def _check(self, url: str, checked: dict[str, str | None]) -> str | None:
        """Why ``url`` may not be delivered to now, or None (its addresses are then pinned)."""
        try:
            target = webtargets.parse(url)
        except webtargets.TargetRefused as exc:
            return str(exc)
        if target.host not in checked:
            try:
                addresses = await webtargets.check(target, self._resolve, self._options.allowed)
                self._pinned.pinned[target.host] = addresses
                checked[target.host] = None
            except webtargets.TargetRefused as exc:
                self._pinned.pinned.pop(target.host, None)
                checked[target.host] = str(exc)
        return checked[target.host]


def _chunks(items: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """``items`` in requests the gateway takes: at most ``MAX_REQUEST_BYTES`` of JSON and
    ``MAX_PER_REQUEST`` items each."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for item in items:
        length = len(orjson.dumps(item)) + 1
        if chunk and (size + length > MAX_REQUEST_BYTES or len(chunk) == MAX_PER_REQUEST):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def _wire(delivery: events.WebhookDelivery) -> dict[str, Any]:
    """What registering a delivery needs: not its request, which only a failed attempt carries."""
    return {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "user_id": delivery.user_id,
        "url": delivery.url,
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
    }


def _from_wire(item: dict[str, Any]) -> events.WebhookDelivery:
    return events.WebhookDelivery.decode(orjson.dumps({**item, "schema": events.WEBHOOK_DELIVERY_SCHEMA}))


def _next_offsets(records: list[Any]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
    return offsets
