"""Answering repeated GETs before Django sees them: the cached-read fast path.

A rendered answer is prepared once: its body, a gzip copy and an ETag. The next identical GET
(same path and query string) is answered straight from this table by the ASGI application:
no URL routing, no parameter parsing, no rendering, a 304 when the client already holds it.
An entry is only used while the catalogue still has the fingerprint it was rendered from (or,
for data that changes only with a release, until it expires), so it can never serve an answer
the catalogue has moved past; a miss falls through to Django, which renders and stores again.
Entries are bounded (LRU) like the rest of L2.

Popular answers are kept current off the request path: an entry stored with a ``refresh``
recipe is re-rendered for the new catalogue when it changes (``refresh``, run by the runtime), so
the next client asking finds it ready instead of paying for the miss.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily

if TYPE_CHECKING:
    from gpubroker.gateway.catalog.index import OfferIndex

log = logging.getLogger(__name__)

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Recipe = Callable[["OfferIndex"], Awaitable[bytes]]
"""Renders an entry's body again for a newer catalogue snapshot."""
GZIP_MIN_BYTES = 1024
REFRESH_MOST_RECENT = 64
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Prepared:
    """An answer ready to send as it is."""

    route: str
    body: bytes
    gzipped: bytes | None
    etag: bytes
    fingerprint: str | None
    """The catalogue it was rendered from; None when it does not depend on the catalogue."""
    expires_at: float
    ttl_s: float
    refresh: Recipe | None
    plain_headers: Headers
    gzip_headers: Headers
    not_modified_headers: Headers

    @classmethod
    def of(
        cls, route: str, body: bytes, *, fingerprint: str | None, ttl_s: float, refresh: Recipe | None = None
    ) -> Prepared:
        gzipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
        common = [(b"content-type", b"application/json"), (b"etag", etag), (b"vary", b"Accept-Encoding")]
        plain = [*common, (b"content-length", str(len(body)).encode())]
        zipped = plain if gzipped is None else [
            *common, (b"content-encoding", b"gzip"), (b"content-length", str(len(gzipped)).encode())
        ]  # fmt: skip
        expires_at = time.monotonic() + ttl_s
        return cls(
            route, body, gzipped, etag, fingerprint, expires_at, ttl_s, refresh, plain, zipped, [(b"etag", etag)]
        )

    def headers(self, accept_encoding: bytes) -> tuple[Headers, bytes]:
        if self.gzipped is not None and b"gzip" in accept_encoding:
            return self.gzip_headers, self.gzipped
        return self.plain_headers, self.body


class FastPath:
    def __init__(self, fingerprint: Callable[[], str], *, max_entries: int = 10_000) -> None:
        self._fingerprint = fingerprint
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], Prepared] = OrderedDict()
        self.hits = 0
        self.hits_by_route: Counter[tuple[str, int]] = Counter()
        _REGISTERED.add(self)

    def store(self, path: str, query_string: bytes, prepared: Prepared) -> None:
        key = (path, query_string)
        self._entries[key] = prepared
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def lookup(self, path: str, query_string: bytes) -> Prepared | None:
        key = (path, query_string)
        prepared = self._entries.get(key)
        if prepared is None:
            return None
        if prepared.expires_at <= time.monotonic():
            del self._entries[key]
            return None
        if prepared.fingerprint is not None and prepared.fingerprint != self._fingerprint():
            if prepared.refresh is None:  # a refreshable entry stays, to be re-rendered for the new catalogue
                del self._entries[key]
            return None
        return prepared

    async def refresh(self, index: OfferIndex, *, expiring_within_s: float = 0.0) -> int:
        """Re-render the most recently used refreshable entries that ``index`` has moved past or
        that expire within ``expiring_within_s``; returns how many."""
        soon = time.monotonic() + expiring_within_s
        recent = [
            (key, prepared)
            for key, prepared in reversed(self._entries.items())
            if prepared.refresh is not None
            and (prepared.fingerprint != index.fingerprint or prepared.expires_at < soon)
        ][:REFRESH_MOST_RECENT]
        for key, prepared in recent:
            assert prepared.refresh is not None
            try:
                body = await prepared.refresh(index)
            except Exception:
                log.exception("could not refresh %s?%s; it will be rendered on request", key[0], key[1].decode())
                continue
            if key in self._entries:  # not evicted meanwhile; keep its place in the LRU order
                self._entries[key] = Prepared.of(
                    prepared.route, body, fingerprint=index.fingerprint, ttl_s=prepared.ttl_s, refresh=prepared.refresh
                )
        return len(recent)

    async def serve(self, scope: MutableMapping[str, Any], send: Send) -> bool:
        """Answer a GET from the table; False when it holds nothing current for it.

        Hits are counted (``gpubroker_fast_path_hits_total``) but not timed: the latency
        histogram covers the requests that are rendered, where time is actually spent."""
        prepared = self.lookup(scope["path"], scope["query_string"])
        if prepared is None:
            return False
        if_none_match = accept_encoding = b""
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
        if if_none_match == prepared.etag:
            status, headers, body = 304, prepared.not_modified_headers, b""
        else:
            status = 200
            headers, body = prepared.headers(accept_encoding)
        added = scope.get("gpubroker.headers")  # the guard's: security and rate-limit headers
        if added:
            headers = [*headers, *added]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.hits += 1
        self.hits_by_route[prepared.route, status] += 1  # exported at scrape time (``HitsCollector``)
        return True


class HitsCollector:
    """Exports fast-path hits when Prometheus scrapes: a plain integer per hit on the hot path
    instead of a labelled metric, whose update takes a lock (about 2 us a request)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "gpubroker_fast_path_hits",
            "GETs answered from pre-rendered bytes (not in gpubroker_http_requests_total, which counts rendered ones).",
            labels=["route", "status"],
        )
        totals: Counter[tuple[str, int]] = Counter()
        for fastpath in _REGISTERED:
            totals.update(fastpath.hits_by_route)
        for (route, status), count in sorted(totals.items()):
            family.add_metric([route, str(status)], count)
        yield family


_REGISTERED: weakref.WeakSet[FastPath] = weakref.WeakSet()
REGISTRY.register(HitsCollector())
