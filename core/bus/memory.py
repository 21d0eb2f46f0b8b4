"""The in-process bus used in embedded mode and in unit tests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

from gpubroker.core.bus import Headers, Record
from gpubroker.core.events import OFFERS

COMPACTED = frozenset({OFFERS})


class MemoryBus:
    """Keeps the latest value per key for compacted topics and a bounded tail for the others."""

    def __init__(self, retain: int = 10_000) -> None:
        self._retain = retain
        self._offsets: dict[str, int] = {}
        self._compacted: dict[str, dict[str | None, Record]] = {topic: {} for topic in COMPACTED}
        self._tail: dict[str, deque[Record]] = {}
        self._subscribers: list[tuple[frozenset[str], asyncio.Queue[Record]]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def read_compacted(self, topic: str) -> dict[str, Record]:
        return {key: record for key, record in self._compacted.get(topic, {}).items() if key is not None}

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> None:
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

    async def subscribe(self, topics: Sequence[str], *, from_beginning: bool = True) -> AsyncIterator[Record]:
        wanted = frozenset(topics)
        queue: asyncio.Queue[Record] = asyncio.Queue()
        if from_beginning:
            retained = [r for t in wanted for r in self._compacted.get(t, {}).values()]
            retained += [r for t in wanted for r in self._tail.get(t, ())]
            for record in sorted(retained, key=lambda r: (r.topic, r.offset)):
                queue.put_nowait(record)
        entry = (wanted, queue)
        self._subscribers.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(entry)
