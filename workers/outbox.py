"""Records on their way to the bus, kept on disk until the bus has acknowledged each of them.

A worker hands each poll's changes to ``send``: they are written in one transaction and
published in order, and each row leaves the outbox as soon as the bus has acknowledged that
record, so nothing acknowledged is ever sent again. While the bus is away the rows wait, survive
a restart, and ``run`` keeps retrying on its own with a bounded backoff (never more than
``MAX_RETRY_S`` between tries, whatever the worker's poll interval), so everything waiting is on
the bus within seconds of the broker answering again.

Order is kept per key: rows are published in the order they were written, and an acknowledged
row is kept (and sent again) only when an earlier row of the same key failed, so a key's records
never arrive out of order; that rare case is the only way a record goes out twice. A record whose
acknowledgement is still outstanding is never sent again; it is waited for. The outbox is
bounded: when it holds ``capacity`` records the worker stops polling (``full``) until it has
drained, instead of dropping anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from gpubroker.core.bus import Bus, BusError, Delivery, Headers

log = logging.getLogger(__name__)

Pending = tuple[str, str, bytes | None, Headers]

ACK_WAIT_S = 2.0
"""How long one delivery attempt waits for acknowledgements before handing over to ``run``."""
MIN_RETRY_S = 0.1
MAX_RETRY_S = 2.0

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
        columns = {row[1] for row in self._db.execute("pragma table_info(outbox)")}
        if "created_at" not in columns:  # outboxes written before records were timed
            self._db.execute("alter table outbox add column created_at real")
        self._bus = bus
        self._capacity = capacity
        self._batch = batch
        self._lock = asyncio.Lock()
        self._in_flight: dict[int, tuple[tuple[str, str], Delivery]] = {}
        self._waiting = asyncio.Event()
        self._pending, oldest = self._db.execute("select count(*), min(created_at) from outbox").fetchone()
        self._oldest_at: float | None = oldest if self._pending else None
        if self._pending:
            self._oldest_at = self._oldest_at or time.time()
            self._waiting.set()
        self.delivered = 0

    def close(self) -> None:
        self._db.close()

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the bus."""
        return self._pending

    @property
    def full(self) -> bool:
        return self._pending >= self._capacity

    def oldest_age_s(self, now: float | None = None) -> float:
        """How long the oldest waiting record has waited (0 when none waits)."""
        if not self._pending or self._oldest_at is None:
            return 0.0
        return max(0.0, (now if now is not None else time.time()) - self._oldest_at)

    async def send(self, records: list[Pending]) -> bool:
        """Keep ``records`` and deliver everything waiting, in order; True when the outbox is
        empty afterwards (else ``run`` goes on trying). With nothing older waiting, the records
        are published from memory while SQLite stores them, not read back."""
        async with self._lock:
            await self._settle()
            if self._pending or self._in_flight:  # older records go first
                await asyncio.to_thread(self._insert, records)
                return await self._deliver()
            stored = asyncio.ensure_future(asyncio.to_thread(self._insert, records))
            deliveries: list[Delivery] = []
            try:
                for topic, key, value, headers in records:
                    deliveries.append(await self._bus.publish(topic, key, value, headers))
            except BusError as exc:
                log.warning("bus unavailable, %d records wait in the outbox: %s", len(records), exc)
            first_id = await stored
            for offset, ((topic, key, _, _), delivery) in enumerate(zip(records, deliveries, strict=False)):
                self._in_flight[first_id + offset] = ((topic, key), delivery)
            await self._await_in_flight(ACK_WAIT_S)
            await self._settle()
            return self._pending == 0

    async def drain(self, timeout_s: float = ACK_WAIT_S) -> bool:
        """Deliver everything waiting, trying again for up to ``timeout_s``; True when empty."""
        deadline = time.monotonic() + timeout_s
        delay = MIN_RETRY_S
        while True:
            async with self._lock:
                if await self._deliver(min(ACK_WAIT_S, max(0.0, deadline - time.monotonic()))):
                    return True
            if time.monotonic() + delay >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what waits whenever something does, with a backoff that starts at
        ``MIN_RETRY_S`` and never exceeds ``MAX_RETRY_S`` (with jitter), until ``stop``."""
        delay = MIN_RETRY_S
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._waiting.wait(), timeout=MAX_RETRY_S)
            if stop.is_set() or not self._pending:
                continue
            async with self._lock:
                delivered = await self._deliver()
            if delivered:
                delay = MIN_RETRY_S
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, MAX_RETRY_S)

    def waiting(self, topic: str) -> list[Pending]:
        """Undelivered records of ``topic`` in order (used to rebuild state after a restart)."""
        rows = self._db.execute("select topic, key, value, headers from outbox where topic = ? order by id", (topic,))
        return [(t, k, v, _headers(h)) for t, k, v, h in rows]

    async def _deliver(self, wait_s: float = ACK_WAIT_S) -> bool:
        """One attempt: settle what is in flight, publish what waits (if nothing earlier is still
        outstanding), and wait up to ``wait_s`` for the acknowledgements."""
        await self._settle()
        if self._in_flight:
            await self._await_in_flight(wait_s)
            await self._settle()
            if self._in_flight:
                return False
        while self._pending:
            rows = await asyncio.to_thread(self._next_batch)
            if not rows:
                break
            try:
                for row_id, topic, key, value, headers in rows:
                    delivery = await self._bus.publish(topic, key, value, _headers(headers))
                    self._in_flight[row_id] = ((topic, key), delivery)
            except BusError as exc:
                log.warning("bus unavailable, %d records wait in the outbox: %s", self._pending, exc)
            await self._await_in_flight(wait_s)
            settled = await self._settle()
            if self._in_flight or not settled:
                if self._pending:
                    log.warning("bus unavailable, %d records wait in the outbox", self._pending)
                return False
        return self._pending == 0

    async def _await_in_flight(self, wait_s: float) -> None:
        outstanding = [delivery for _, delivery in self._in_flight.values() if not delivery.done()]
        if outstanding and wait_s > 0:
            await asyncio.wait(outstanding, timeout=wait_s)

    async def _settle(self) -> bool:
        """Remove the rows the bus acknowledged; forget the failed ones (they are sent again).
        False when anything failed. A row acknowledged after an earlier row of its key failed is
        kept, so the key's records go out again in order."""
        acknowledged: list[int] = []
        failed_keys: set[tuple[str, str]] = set()
        outstanding_keys: set[tuple[str, str]] = set()
        all_ok = True
        for row_id in sorted(self._in_flight):
            key, delivery = self._in_flight[row_id]
            if not delivery.done():
                outstanding_keys.add(key)
                continue
            if delivery.exception() is not None:
                all_ok = False
                failed_keys.add(key)
                del self._in_flight[row_id]
            elif key in failed_keys:
                del self._in_flight[row_id]  # earlier record of the key failed: this one goes again after it
            elif key not in outstanding_keys:
                acknowledged.append(row_id)
                del self._in_flight[row_id]
        if acknowledged:
            await asyncio.to_thread(self._delete, acknowledged)
        return all_ok

    def _insert(self, records: Iterable[Pending]) -> int:
        """Store ``records`` in one transaction; the id of the first (ids follow in order)."""
        encoded: dict[int, bytes] = {}  # a poll's records share one headers tuple: encode it once
        now = time.time()
        rows = [
            (topic, key, value, encoded.get(id(h)) or encoded.setdefault(id(h), _encode_headers(h)), now)
            for topic, key, value, h in records
        ]
        if not rows:
            return 0
        with self._db:
            self._db.execute("begin")
            self._db.executemany(
                "insert into outbox (topic, key, value, headers, created_at) values (?, ?, ?, ?, ?)", rows
            )
            last = int(self._db.execute("select max(id) from outbox").fetchone()[0])
        if not self._pending:
            self._oldest_at = now
        self._pending += len(rows)
        self._waiting.set()
        return last - len(rows) + 1

    def _next_batch(self) -> list[tuple[int, str, str, bytes | None, bytes]]:
        """The oldest rows, in the order they were written (called with nothing in flight)."""
        query = "select id, topic, key, value, headers from outbox order by id limit ?"
        return self._db.execute(query, (self._batch,)).fetchall()

    def _delete(self, row_ids: Sequence[int]) -> None:
        """Delete rows by id (in order), a contiguous run at a time: usually one statement."""
        with self._db:
            self._db.execute("begin")
            self._db.executemany("delete from outbox where id between ? and ?", _runs(row_ids))
            oldest = self._db.execute("select created_at from outbox order by id limit 1").fetchone()
        self._pending = max(0, self._pending - len(row_ids)) if oldest is not None else 0
        self._oldest_at = (oldest[0] or time.time()) if oldest is not None else None
        self.delivered += len(row_ids)
        if not self._pending:
            self._waiting.clear()


def _runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending ids as (first, last) runs of consecutive ids."""
    runs: list[tuple[int, int]] = []
    for row_id in ids:
        if runs and runs[-1][1] == row_id - 1:
            runs[-1] = (runs[-1][0], row_id)
        else:
            runs.append((row_id, row_id))
    return runs


def _encode_headers(headers: Headers) -> bytes:
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _headers(raw: bytes) -> Headers:
    return tuple((k, v.encode("latin-1")) for k, v in orjson.loads(raw))
