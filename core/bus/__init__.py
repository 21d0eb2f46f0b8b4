"""The event bus: Kafka in production, an in-process bus with the same interface embedded.

Producers call ``publish``; consumers iterate ``subscribe``. Both backends keep the semantics the
rest of the product relies on: per-key order, compacted ``gpubroker.offers`` (a new subscriber
reading from the beginning sees the latest value of every key, tombstones included),
at-least-once delivery, and consumer groups that split a topic's records between the gateway
instances (for work that must happen once, not once per instance).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gpubroker.core.errors import GpubrokerError
from gpubroker.core.settings import Settings

Headers = Sequence[tuple[str, bytes]]
Delivery = asyncio.Future[object]
"""A published record's fate: done when the bus has acknowledged it (or failed to)."""


class BusError(GpubrokerError):
    """Records could not be delivered to, or read from, the bus."""


@dataclass(frozen=True)
class Record:
    topic: str
    key: str | None
    value: bytes | None
    offset: int = -1
    partition: int = 0
    headers: Headers = field(default_factory=tuple)


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> Delivery:
        """Queue a record; it is durable once its ``Delivery`` is done without an exception (a
        ``BusError``), or once ``flush`` returns."""

    async def flush(self) -> None:
        """Wait until every published record is durable; ``BusError`` if any is not."""

    async def read_compacted(self, topic: str) -> dict[str, Record]:
        """The latest record of every key of a compacted topic, as of now (tombstones included)."""

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
        group: str | None = None,
        caught_up: asyncio.Event | None = None,
    ) -> AsyncIterator[Record]:
        """Every record of ``topics`` (from the beginning, or only new ones), for this subscriber alone.

        ``caught_up`` (without a ``group``) is set once the subscriber has been given every record
        that was on ``topics`` when it subscribed: from then on it is following them live.

        With a ``group``, the subscribers sharing it split the records between them, each record
        going to one of them, and the group resumes where it left off: a record counts as handled
        once its subscriber asks for the next one (at least once; a group new to the bus starts
        with new records).
        """


def open_bus(settings: Settings) -> Bus:
    """The configured backend: Kafka when ``GPUBROKER_KAFKA_BOOTSTRAP`` is set, else in-process."""
    if settings.kafka_bootstrap:
        from gpubroker.core.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka_bootstrap)
    from gpubroker.core.bus.memory import MemoryBus

    return MemoryBus()
