"""The Kafka backend (aiokafka): idempotent, acks=all, snappy-compressed, batched.

Consumers read committed records only: the stream analytics write their topics in Kafka
transactions (exactly once), and a record of a transaction that was aborted, or is not yet
committed, must never reach a subscriber.

``flush`` waits for every record published since the last flush and raises ``BusError`` if any
was not acknowledged, so callers can keep undelivered records instead of losing them (the
producer alone reports failures only through per-record futures).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gpubroker.core.bus import BusError, Delivery, Headers, Record

log = logging.getLogger(__name__)

COMMIT_EVERY_S = 1.0


class KafkaBus:
    def __init__(
        self, bootstrap: str, *, linger_ms: int = 5, request_timeout_ms: int = 10_000, flush_timeout_s: float = 15.0
    ) -> None:
        self._bootstrap = bootstrap
        self._flush_timeout_s = flush_timeout_s
        self._producer_settings = {
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "compression_type": "snappy",
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
            "client_id": f"gpubroker-{uuid.uuid4().hex[:8]}",
        }
        # Made by ``start``: a bus that only subscribes never opens (nor leaves unclosed) a producer.
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._producer_settings)
            try:
                await producer.start()
            except Exception as exc:
                await producer.stop()
                raise BusError(f"cannot reach Kafka at {self._bootstrap}: {exc}") from None
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> Delivery:
        if self._producer is None:
            raise BusError(f"could not queue a record for {topic}: the bus is not started")
        try:
            future = await self._producer.send(topic, value=value, key=key.encode(), headers=list(headers))
        except Exception as exc:
            raise BusError(f"could not queue a record for {topic}: {type(exc).__name__}: {exc}") from None
        self._pending.append(future)
        return future  # type: ignore[no-any-return]

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        # The producer retries a broker that is down for ever; the caller keeps the records and
        # tries again later, so waiting is bounded here (a late acknowledgement is a duplicate).
        done, unfinished = await asyncio.wait(pending, timeout=self._flush_timeout_s)
        failures = [future.exception() for future in done if future.exception() is not None]
        if unfinished or failures:
            reason = repr(failures[0]) if failures else f"no acknowledgement within {self._flush_timeout_s:.0f}s"
            raise BusError(f"{len(unfinished) + len(failures)} of {len(pending)} records not acknowledged: {reason}")

    async def read_compacted(self, topic: str) -> dict[str, Record]:
        await self.start()
        try:
            assert self._producer is not None
            numbers = await asyncio.wait_for(self._producer.partitions_for(topic), timeout=15)
        except Exception as exc:
            raise BusError(f"cannot read the partitions of {topic}: {type(exc).__name__}: {exc}") from None
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            latest: dict[str, Record] = {}
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for messages in (await consumer.getmany(timeout_ms=1000)).values():
                    for message in messages:
                        if message.key is not None:
                            key = message.key.decode()
                            latest[key] = Record(
                                topic,
                                key,
                                message.value,
                                message.offset,
                                message.partition,
                                tuple(message.headers or ()),
                            )
            return latest
        finally:
            await consumer.stop()

    async def subscribe(
        self,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
        group: str | None = None,
        caught_up: asyncio.Event | None = None,
    ) -> AsyncIterator[Record]:
        # Without a group, every gateway instance gets every record to build its own view; a
        # group splits the partitions between its members and commits what they have handled.
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self._bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="latest" if group is not None or not from_beginning else "earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        handled: dict[TopicPartition, int] = {}
        held: set[TopicPartition] = set()
        committed_at = time.monotonic()
        ends: dict[TopicPartition, int] | None = None
        try:
            while True:
                if group is not None and consumer.assignment() != held:
                    held = await _hold_starts(consumer, held)
                if caught_up is not None and not caught_up.is_set() and consumer.assignment():
                    # Positions, not offsets of records seen: a position moves past the markers
                    # transactions leave, which no record is ever given for.
                    ends = ends or await consumer.end_offsets(list(consumer.assignment()))
                    if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                        caught_up.set()
                batches = await consumer.getmany(timeout_ms=int(COMMIT_EVERY_S * 1000))
                for messages in batches.values():
                    for message in messages:
                        yield Record(
                            topic=message.topic,
                            key=message.key.decode() if message.key is not None else None,
                            value=message.value,
                            offset=message.offset,
                            partition=message.partition,
                            headers=tuple(message.headers or ()),
                        )
                        if group is not None:  # asked for the next record, the subscriber is done with this one
                            handled[TopicPartition(message.topic, message.partition)] = message.offset + 1
                # Commit at most every COMMIT_EVERY_S while busy, and once the records stop coming:
                # what was handled is never left uncommitted for long.
                if handled and (not batches or time.monotonic() - committed_at >= COMMIT_EVERY_S):
                    await _commit(consumer, handled)
                    committed_at = time.monotonic()
        finally:
            if handled:
                await _commit(consumer, handled)
            await consumer.stop()


async def _hold_starts(consumer: AIOKafkaConsumer, held: set[TopicPartition]) -> set[TopicPartition]:
    """Commit where this member starts on each newly assigned partition the group never committed.

    Such a partition starts at its end ("latest"), read when a member is given it. Until something
    is committed, every rebalance reads that end again, so a record written while the partitions
    move (a second gateway joining, say) would be skipped by every member. Returns the assigned
    partitions whose start is now fixed; the rest are tried again on the next turn."""
    assigned = consumer.assignment()
    fresh = assigned - held
    try:
        starts = {tp: await consumer.position(tp) for tp in fresh if await consumer.committed(tp) is None}
        if starts:
            await consumer.commit(starts)
    except Exception as exc:  # a rebalance under way: the new assignment is held on a later turn
        log.warning("could not commit where consumption starts (%s: %s)", type(exc).__name__, exc)
        return held & assigned
    return set(assigned)


async def _commit(consumer: AIOKafkaConsumer, handled: dict[TopicPartition, int]) -> None:
    """Commit what was handled; a partition moved to another member meanwhile is not ours to
    commit (its new owner sees those records again: at least once)."""
    offsets, assigned = dict(handled), consumer.assignment()
    handled.clear()
    offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if offsets:
        try:
            await consumer.commit(offsets)
        except Exception as exc:  # a rebalance under way; the records are seen again, not lost
            log.warning("could not commit consumed offsets (%s: %s)", type(exc).__name__, exc)
