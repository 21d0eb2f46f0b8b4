"""Answering repeated GETs before Django sees them: the cached-read fast path.

A rendered answer is prepared once: its body, a gzip copy and an ETag. The next identical GET
(same path and query string) is answered straight from this table by the ASGI application:
no URL routing, no parameter parsing, no rendering, a 304 when the client already holds it.
An entry is only used while the catalogue still has the fingerprint it was rendered from (or,
for data that changes only with a release, until it expires), so it can never serve an answer
the catalogue has moved past; a miss falls through to Django, which renders and stores again.
Entries are bounded (LRU) like the rest of L2.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from gpubroker.gateway.middleware import LATENCY, REQUESTS

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
GZIP_MIN_BYTES = 1024


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

    @classmethod
    def of(cls, route: str, body: bytes, *, fingerprint: str | None, ttl_s: float) -> Prepared:
        gzipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
        return cls(route, body, gzipped, etag, fingerprint, time.monotonic() + ttl_s)

    def headers(self, accept_encoding: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        headers = [(b"content-type", b"application/json"), (b"etag", self.etag), (b"vary", b"Accept-Encoding")]
        body = self.body
        if self.gzipped is not None and b"gzip" in accept_encoding:
            body = self.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        return headers, body


class FastPath:
    def __init__(self, fingerprint: Callable[[], str], *, max_entries: int = 10_000) -> None:
        self._fingerprint = fingerprint
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], Prepared] = OrderedDict()
        self.hits = 0

    def store(self, path: str, query_string: bytes, prepared: Prepared) -> None:
        key = (path, query_string)
        self._entries[key] = prepared
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def lookup(self, path: str, query_string: bytes) -> Prepared | None:
        prepared = self._entries.get((path, query_string))
        if prepared is None:
            return None
        if prepared.expires_at <= time.monotonic() or (
            prepared.fingerprint is not None and prepared.fingerprint != self._fingerprint()
        ):
            del self._entries[(path, query_string)]
            return None
        return prepared

    async def serve(self, scope: MutableMapping[str, Any], send: Send) -> bool:
        """Answer a GET from the table; False when it holds nothing current for it."""
        started = time.perf_counter()
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
            status, headers, body = 304, [(b"etag", prepared.etag)], b""
        else:
            status = 200
            headers, body = prepared.headers(accept_encoding)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.hits += 1
        REQUESTS.labels(prepared.route, "GET", str(status)).inc()
        LATENCY.labels(prepared.route).observe(time.perf_counter() - started)
        return True
