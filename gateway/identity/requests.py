"""Requests refused for their shape, before anything reads them: too large, too many fields, or
characters no route accepts. Each refusal is the API's JSON error with the right status, never
Django's HTML page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 256 * 1024
"""Request bodies are small JSON documents (the largest, a bulk query, is a few KiB)."""
MAX_QUERY_BYTES = 8 * 1024
MAX_QUERY_FIELDS = 200


@dataclass(frozen=True)
class Problem:
    status: int
    message: str


def request_problem(scope: MutableMapping[str, Any], headers: dict[bytes, bytes]) -> Problem | None:
    """What is wrong with the request's shape, or None."""
    query: bytes = scope.get("query_string", b"")
    if "\x00" in scope["path"]:  # a NUL in a parameter is refused by the parser, naming it
        return Problem(400, "the path holds a NUL character")
    if len(query) > MAX_QUERY_BYTES:
        return Problem(414, f"the query string is longer than {MAX_QUERY_BYTES // 1024} KiB")
    if query.count(b"&") >= MAX_QUERY_FIELDS:
        return Problem(400, f"more than {MAX_QUERY_FIELDS} query parameters")
    length = headers.get(b"content-length")
    if length is not None:
        if not length.strip().isdigit():
            return Problem(400, "Content-Length is not a number")
        if int(length) > MAX_BODY_BYTES:
            return Problem(413, f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB")
    return None


async def read_body(receive: Callable[[], Awaitable[MutableMapping[str, Any]]], limit: int) -> bytes | None:
    """The whole request body, or None as soon as it grows past ``limit`` (a chunked upload
    declares no length up front)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client left; the app will see the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
