"""Cursor pagination that stays exact while prices move.

The first page of a query fixes the whole order: the ids of every matching offer, in order,
are pinned in the shared cache (L2 and Redis) for ``pin_ttl_s``, and each cursor names that
pinned order and an offset into it. The first page itself needs only its own offers (a
partition, not a sort), so the full order is computed and pinned just after it is answered; a
next page asked of this instance meanwhile waits for it. Paging through it, on any gateway instance, yields every
offer exactly once however prices change meanwhile; each item shows the offer as it is now
(an offer withdrawn since is left out). When the pinned order has expired, or Redis and this
instance's L2 both lost it, the cursor still carries the last offer's sort key and id, and the
query resumes after them over the current catalogue (a keyset cursor: nothing is repeated, but
an offer whose price moved across the boundary may be missed).

Cursors are signed, so a client cannot forge or alter one (``BadCursor``, a 400).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
from dataclasses import dataclass

import numpy as np
import orjson
from numpy.typing import NDArray

from gpubroker.core.cache import TwoTierCache
from gpubroker.gateway.catalog.index import ID_WIDTH, OfferIndex
from gpubroker.gateway.catalog.query import OfferQuery, first, matching, ordered, position_after, sort_keys

_SIGNATURE_BYTES = 16


class BadCursor(ValueError):
    """The cursor was not issued by this deployment for this query."""


@dataclass(frozen=True)
class Cursor:
    shape: str
    pin: str | None
    offset: int
    key: float
    last_id: str


@dataclass(frozen=True)
class QueryPage:
    rendered: list[bytes]
    total: int
    next_cursor: str | None
    pinned: bool


class Pager:
    def __init__(self, cache: TwoTierCache, signing_key: bytes, *, pin_ttl_s: float = 900.0) -> None:
        self._cache = cache
        self._key = signing_key
        self._pin_ttl_s = pin_ttl_s
        self._pinning: dict[str, asyncio.Task[None]] = {}

    async def page(self, index: OfferIndex, query: OfferQuery, cursor: str | None) -> QueryPage:
        if cursor is None:
            return await self._first_page(index, query)
        position = self.decode(cursor, query)
        pinned = None
        if position.pin is not None:
            pending = self._pinning.get(position.pin)
            if pending is not None:
                await asyncio.shield(pending)
            pinned = await self._cache.get(_pin_key(position.pin))
        if pinned is not None:
            return self._pinned_page(index, query, position, pinned)
        return self._keyset_page(index, query, position)

    async def _first_page(self, index: OfferIndex, query: OfferQuery) -> QueryPage:
        rows = matching(index, query)
        keys = sort_keys(index, rows, query)
        top = first(keys, query.limit)
        page = rows[top]
        next_cursor = None
        if len(rows) > query.limit:
            pin = hashlib.blake2b(f"{index.fingerprint}:{query.shape()}".encode(), digest_size=12).hexdigest()
            self._pin_soon(pin, index, rows, keys)
            last = Cursor(query.shape(), pin, query.limit, float(keys[top[-1]]), _id(index, page[-1]))
            next_cursor = self.encode(last)
        return QueryPage([index.rendered[row] for row in page], len(rows), next_cursor, pinned=True)

    def _pin_soon(self, pin: str, index: OfferIndex, rows: NDArray[np.intp], keys: NDArray[np.float64]) -> None:
        if pin in self._pinning:
            return

        async def store() -> None:
            # numpy sorts without the GIL: a 100k-offer order does not hold up other requests
            order = await asyncio.to_thread(np.argsort, keys, kind="stable")
            await self._cache.put(_pin_key(pin), index.ids[rows[order]].tobytes(), self._pin_ttl_s)

        task = self._pinning[pin] = asyncio.get_running_loop().create_task(store())
        task.add_done_callback(lambda _: self._pinning.pop(pin, None))

    def _pinned_page(self, index: OfferIndex, query: OfferQuery, position: Cursor, pinned: bytes) -> QueryPage:
        total = len(pinned) // ID_WIDTH
        end = min(position.offset + query.limit, total)
        chunk = pinned[position.offset * ID_WIDTH : end * ID_WIDTH]
        ids = [chunk[i : i + ID_WIDTH] for i in range(0, len(chunk), ID_WIDTH)]
        rows = index.rows_of(ids)
        next_cursor = None
        if end < total:
            next_cursor = self.encode(Cursor(position.shape, position.pin, end, math.nan, ids[-1].decode()))
        return QueryPage([index.rendered[row] for row in rows], total, next_cursor, pinned=True)

    def _keyset_page(self, index: OfferIndex, query: OfferQuery, position: Cursor) -> QueryPage:
        rows, keys = ordered(index, query)
        start = _resume_at(index, rows, keys, position)
        page = rows[start : start + query.limit]
        next_cursor = None
        if start + query.limit < len(rows):
            last = start + query.limit - 1
            next_cursor = self.encode(Cursor(position.shape, None, 0, float(keys[last]), _id(index, page[-1])))
        return QueryPage([index.rendered[row] for row in page], len(rows), next_cursor, pinned=False)

    def encode(self, cursor: Cursor) -> str:
        key = None if math.isnan(cursor.key) else cursor.key
        payload = orjson.dumps({"q": cursor.shape, "p": cursor.pin, "o": cursor.offset, "k": key, "id": cursor.last_id})
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")

    def decode(self, text: str, query: OfferQuery) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, TypeError):
            raise BadCursor("cursor is not valid base64") from None
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            raise BadCursor("cursor was altered or was issued by another deployment")
        try:
            data = orjson.loads(payload)
            cursor = Cursor(
                shape=str(data["q"]),
                pin=None if data["p"] is None else str(data["p"]),
                offset=int(data["o"]),
                key=math.nan if data["k"] is None else float(data["k"]),
                last_id=str(data["id"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise BadCursor("cursor is malformed") from None
        if cursor.shape != query.shape():
            raise BadCursor("cursor belongs to a different query; repeat the query's filters and sort")
        return cursor


def _resume_at(index: OfferIndex, rows: NDArray[np.intp], keys: NDArray[np.float64], position: Cursor) -> int:
    if position.pin is not None:  # its pinned order is gone: go on after the last offer seen, where it is now
        seen = np.flatnonzero(index.ids[rows] == position.last_id.encode())
        if seen.size:
            return int(seen[0]) + 1
        if math.isnan(position.key):
            return min(position.offset, len(rows))
    return position_after(index, rows, keys, position.key, position.last_id.encode())


def _pin_key(pin: str) -> str:
    return f"pin:{pin}"


def _id(index: OfferIndex, row: np.intp) -> str:
    return bytes(index.ids[row]).decode()
