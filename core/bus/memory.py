"""The in-process bus used in embedded mode and in unit tests."""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncIterator, Sequence

from gpubroker.core.bus import Delivery, Headers, Record
from gpubroker.core.events import OFFERS, PRICE_AGGREGATES

COMPACTED = frozenset({OFFERS, PRICE_AGGREGATES})


class MemoryBus:
    """Keeps the latest value per key for compacted topics and a bounded tail for the others."""

    def __init__(self, retain: int = 10_000) -> None:
        self._retain = retain
        self._offsets: dict[str, int] = {}
        self._compacted: dict[str, dict[str | None, Record]] = {topic: {} for topic in COMPACTED}
        self._tail: dict[str, deque[Record]] = {}
        self._subscribers: list[tuple[frozenset[str], asyncio.Queue[Record]]] = []
        self._groups: dict[str, list[tuple[frozenset[str], asyncio.Queue[Record]]]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def read_compacted(self, topic: str) -> dict[str, Record]:
        return {key: record for key, record in self._compacted.get(topic, {}).items() if key is not None}

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> Delivery:
        offset = self._offsets.get(topic, 0)
        self._offsets[topic] = offset + 1
        record = Record(topic, key, value, offset, 0, tuple(headers))
        if topic in COMPACTED:
            self._compacted[topic][key] = record
        else:
            self._tail.setdefault(topic, deque(maxlen=self._retain)).append(record)
        for topics, queue in self._subscribers:
            if topic in topics:
                queue.put_nowait(record)
        for members in self._groups.values():  # one member per group, chosen by key as Kafka's partitioner would
            interested = [queue for topics, queue in members if topic in topics]
            if interested:
                interested[zlib.crc32((key or "").encode()) % len(interested)].put_nowait(record)
        delivered: Delivery = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # in memory, a published record is as durable as it gets
        return delivered

    async def subscribe(
        self,
        topics: Sequence[str],
        *,
        from_beginning: bool = True,
        group: str | None = None,
        caught_up: asyncio.Event | None = None,
    ) -> AsyncIterator[Record]:
        """A ``group`` lives as long as this process: its members share new records only."""
        wanted = frozenset(topics)
        queue: asyncio.Queue[Record] = asyncio.Queue()
        if group is not None:
            members = self._groups.setdefault(group, [])
            member = (wanted, queue)
            members.append(member)
            try:
                while True:
                    yield await queue.get()
            finally:
                members.remove(member)
        backlog = 0
        if from_beginning:
            retained = [r for t in wanted for r in self._compacted.get(t, {}).values()]
            retained += [r for t in wanted for r in self._tail.get(t, ())]
            for record in sorted(retained, key=lambda r: (r.topic, r.offset)):
                queue.put_nowait(record)
            backlog = len(retained)
        entry = (wanted, queue)
        self._subscribers.append(entry)
        try:
            while True:
                if caught_up is not None and backlog <= 0:
                    caught_up.set()
                yield await queue.get()
                backlog -= 1
        finally:
            self._subscribers.remove(entry)
