"""The least any Python ASGI application can do per request: the ceiling for the fast path.

Answers every request with the bytes of ``BENCH_BODY_FILE`` (the gateway's gzip answer) and the
same headers the gateway's fast path sends, without looking at anything. ``bench/cached_get.py``
runs it under granian next to the gateway, so the table shows how much of the gap to nginx is
the server's and how much the gateway's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

BODY = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()
HEADERS = [
    (b"content-type", b"application/json"),
    (b"etag", b'"' + hashlib.blake2b(BODY, digest_size=12).hexdigest().encode() + b'"'),
    (b"vary", b"Accept-Encoding"),
    (b"content-encoding", b"gzip"),
    (b"content-length", str(len(BODY)).encode()),
]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
ANSWER = {"type": "http.response.body", "body": BODY}


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(ANSWER)
