"""``/internal/v1/cache``: the queries asked most lately (``popular``) and warming them on this
instance, for the ``cache_warming`` DAG, which calls every instance.

Warming a query answers it the way a client's GET is answered (through Django, the view and
the cache), as the platform: it is rendered for the current catalogue into both cache tiers
(this instance's memory and Redis, which other instances read on a miss) and the fast path."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.gateway.identity.callers import identity_of
from gpubroker.gateway.popular import WARMABLE
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])
MAX_WARM = 100


class PopularQuery(Schema):
    query: str = Field(description="Path and query string as clients sent it, e.g. /api/v2/providers?gpu=H100.")
    count: int


class Popular(Schema):
    window_s: int
    queries: list[PopularQuery]


@router.get("/popular", response={200: Popular, 401: Error, 403: Error, 422: Error}, summary="Most asked queries")
async def popular(
    request: HttpRequest,
    window_s: int = Query(3600, ge=60, le=7200, description="How far back, in seconds."),
    limit: int = Query(20, ge=1, le=MAX_WARM),
) -> dict[str, Any]:
    top = await current().queries.top(window_s, limit)
    return {"window_s": window_s, "queries": [{"query": query, "count": count} for query, count in top]}


class WarmBody(Schema):
    model_config = ConfigDict(extra="forbid")

    queries: Annotated[list[Annotated[str, Field(min_length=1, max_length=2000)]], Field(max_length=MAX_WARM)]


class Warmed(Schema):
    query: str
    status: int = Field(description="What a client asking it now gets: 200, or the 4xx it is refused with.")
    ms: float


class WarmResult(Schema):
    fingerprint: str = Field(description="The catalogue the answers were rendered for.")
    warmed: list[Warmed]


@router.post("/warm", response={200: WarmResult, 401: Error, 403: Error, 422: Error}, summary="Warm queries here")
async def warm(request: HttpRequest, body: WarmBody) -> dict[str, Any]:
    runtime = current()
    identity = identity_of(request)
    warmed = []
    for text in body.queries:
        parts = urlsplit(text)
        if parts.path not in WARMABLE or parts.scheme or parts.netloc:
            warmed.append({"query": text, "status": 404, "ms": 0.0})
            continue
        started = time.perf_counter()
        status = await _get(parts.path, parts.query.encode("latin-1"), identity)
        warmed.append({"query": text, "status": status, "ms": round((time.perf_counter() - started) * 1000, 3)})
    return {"fingerprint": runtime.catalog.fingerprint, "warmed": warmed}


async def _get(path: str, query: bytes, identity: Any) -> int:
    """A GET of ``path?query`` through Django as ``identity``; returns the answer's status."""
    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": [],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 80), "gpubroker.identity": identity,
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # connected until the answer is sent; Django then stops listening
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ASGIHandler()(scope, receive, send)
    return int(sent[0]["status"]) if sent else 500
