"""Records on their way to the bus, kept on disk until the bus has acknowledged them.

A worker hands each poll's changes to ``send``: they are written in one transaction while the
bus publishes them, and deleted once acknowledged. If Kafka is down the records stay, are
delivered first by the next ``send`` or ``drain`` and survive a restart; delivery is at least
once. The outbox is bounded: when it holds
``capacity`` records the worker stops polling (``full``) until it has drained, instead of
dropping anything.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import orjson

from gpubroker.core.bus import Bus, BusError, Headers

log = logging.getLogger(__name__)

Pending = tuple[str, str, bytes | None, Headers]

_SCHEMA = """
create table if not exists outbox (
    id integer primary key autoincrement,
    topic text not null,
    key text not null,
    value blob,
    headers blob not null
)
"""


class Outbox:
    def __init__(self, path: Path, bus: Bus, *, capacity: int = 200_000, batch: int = 50_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.execute(_SCHEMA)
        self._bus = bus
        self._capacity = capacity
        self._batch = batch
        self._lock = asyncio.Lock()
        self._pending = self._db.execute("select count(*) from outbox").fetchone()[0]
        self.delivered = 0

    def close(self) -> None:
        self._db.close()

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def full(self) -> bool:
        return self._pending >= self._capacity

    async def send(self, records: list[Pending]) -> bool:
        """Deliver everything waiting, then ``records``; ``True`` when all were acknowledged.

        The fresh records are written to disk while the bus works on them (SQLite runs in a
        thread) and published from memory; whatever is not acknowledged stays on disk.
        """
        async with self._lock:
            if self._pending and not await self._drain_stored(up_to=None):
                await self._store(records)
                return False
            stored = asyncio.ensure_future(self._store(records))
            delivered = await self._publish(records)
            last_id = await stored
            if not delivered:
                return False
            await asyncio.to_thread(self._delete_through, last_id)
            self._pending = max(0, self._pending - len(records))
            self.delivered += len(records)
            return True

    async def _store(self, records: list[Pending]) -> int:
        encoded: dict[int, bytes] = {}  # a poll's records share one headers tuple: encode it once
        rows = [
            (topic, key, value, encoded.get(id(headers)) or encoded.setdefault(id(headers), _encode_headers(headers)))
            for topic, key, value, headers in records
        ]
        last_id = await asyncio.to_thread(self._insert, rows)
        self._pending += len(rows)
        return last_id

    def _insert(self, rows: list[tuple[str, str, bytes | None, bytes]]) -> int:
        with self._db:
            self._db.execute("begin")
            self._db.executemany("insert into outbox (topic, key, value, headers) values (?, ?, ?, ?)", rows)
            return int(self._db.execute("select coalesce(max(id), 0) from outbox").fetchone()[0])

    async def _publish(self, records: Iterable[Pending]) -> bool:
        try:
            for topic, key, value, headers in records:
                await self._bus.publish(topic, key, value, headers)
            await self._bus.flush()
        except BusError as exc:
            log.warning("bus unavailable, %d records wait in the outbox: %s", self._pending, exc)
            return False
        return True

    def waiting(self, topic: str) -> list[Pending]:
        """Undelivered records of ``topic`` in order (used to rebuild state after a restart)."""
        rows = self._db.execute("select topic, key, value, headers from outbox where topic = ? order by id", (topic,))
        return [(t, k, v, _headers(h)) for t, k, v, h in rows]

    async def drain(self) -> bool:
        """Deliver everything waiting; ``True`` when the outbox is empty afterwards."""
        async with self._lock:
            return await self._drain_stored(up_to=None)

    async def _drain_stored(self, *, up_to: int | None) -> bool:
        while self._pending:
            rows = await asyncio.to_thread(self._next_batch, up_to)
            if not rows:
                if up_to is None:
                    self._pending = 0
                return True
            if not await self._publish((topic, key, value, _headers(h)) for _, topic, key, value, h in rows):
                return False
            await asyncio.to_thread(self._delete_through, rows[-1][0])
            self._pending = max(0, self._pending - len(rows))
            self.delivered += len(rows)
        return True

    def _next_batch(self, up_to: int | None) -> list[tuple[int, str, str, bytes | None, bytes]]:
        query = "select id, topic, key, value, headers from outbox where id <= ? order by id limit ?"
        return self._db.execute(query, (up_to if up_to is not None else 2**62, self._batch)).fetchall()

    def _delete_through(self, last_id: int) -> None:
        with self._db:
            self._db.execute("begin")
            self._db.execute("delete from outbox where id <= ?", (last_id,))


def _encode_headers(headers: Headers) -> bytes:
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _headers(raw: bytes) -> Headers:
    return tuple((k, v.encode("latin-1")) for k, v in orjson.loads(raw))
