"""Filtering, sorting and cursor pagination over the catalogue.

Cursors are keyset cursors (the sort key and id of the last offer on the page), signed so a
client cannot forge one; a tampered or foreign cursor is a ``BadCursor``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson

from gpubroker.core.offer import Availability, Offer

Sort = Literal["price", "-price"]
SORTS: tuple[Sort, ...] = ("price", "-price")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class BadCursor(ValueError):
    """The cursor was not issued by this deployment for this query."""


@dataclass(frozen=True)
class OfferQuery:
    gpu_types: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    availability: frozenset[Availability] = frozenset()
    sort: Sort = "price"
    limit: int = DEFAULT_LIMIT

    def matches(self, offer: Offer) -> bool:
        if self.gpu_types and offer.gpu_type not in self.gpu_types:
            return False
        if self.providers and offer.provider not in self.providers:
            return False
        price = offer.price_per_hour
        if self.min_price is not None and (price is None or price < self.min_price):
            return False
        if self.max_price is not None and (price is None or price > self.max_price):
            return False
        return not self.availability or offer.availability_status in self.availability

    def shape(self) -> str:
        """A short digest of the query apart from its page size, to bind cursors to it."""
        described = orjson.dumps(
            [
                sorted(self.gpu_types),
                sorted(self.providers),
                str(self.min_price),
                str(self.max_price),
                sorted(self.availability),
                self.sort,
            ]
        )
        return hashlib.blake2b(described, digest_size=8).hexdigest()


@dataclass(frozen=True)
class QueryPage:
    items: list[Offer]
    total: int
    next_cursor: str | None


def _key(sort: Sort, price: Decimal | None, offer_id: str) -> tuple[Any, ...]:
    """Offers without a published price come last in either direction."""
    if price is None:
        return (1, Decimal(0), offer_id)
    return (0, price if sort == "price" else -price, offer_id)


def _sort_key(sort: Sort) -> Callable[[Offer], tuple[Any, ...]]:
    return lambda offer: _key(sort, offer.price_per_hour, offer.id)


def run_query(offers: Iterable[Offer], query: OfferQuery, cursor: str | None, key: bytes) -> QueryPage:
    matching = sorted((offer for offer in offers if query.matches(offer)), key=_sort_key(query.sort))
    start = 0
    if cursor is not None:
        after = _decode_cursor(cursor, query, key)
        sort_key = _sort_key(query.sort)
        start = next((i for i, offer in enumerate(matching) if sort_key(offer) > after), len(matching))
    page = matching[start : start + query.limit]
    has_more = start + query.limit < len(matching)
    next_cursor = _encode_cursor(page[-1], query, key) if page and has_more else None
    return QueryPage(page, len(matching), next_cursor)


def _encode_cursor(last: Offer, query: OfferQuery, key: bytes) -> str:
    price = None if last.price_per_hour is None else str(last.price_per_hour)
    payload = orjson.dumps({"p": price, "id": last.id, "q": query.shape()})
    signature = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(signature + payload).decode().rstrip("=")


def _decode_cursor(cursor: str, query: OfferQuery, key: bytes) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise BadCursor("cursor is not valid base64") from None
    signature, payload = raw[:16], raw[16:]
    if not hmac.compare_digest(signature, hmac.new(key, payload, hashlib.sha256).digest()[:16]):
        raise BadCursor("cursor was altered or was issued by another deployment")
    data = orjson.loads(payload)
    if data.get("q") != query.shape():
        raise BadCursor("cursor belongs to a different query; repeat the query's filters and sort")
    try:
        price = None if data["p"] is None else Decimal(data["p"])
        return _key(query.sort, price, str(data["id"]))
    except (InvalidOperation, KeyError, TypeError):
        raise BadCursor("cursor is malformed") from None
