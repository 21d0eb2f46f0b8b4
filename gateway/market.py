"""``GET /analytics/market`` and ``GET /analytics/market/stream``: the market's per-GPU prices over
1-minute windows, as the stream analytics compute them (``realtime/market.py``).

The first answers with the latest closed window of each GPU type, over every continent and
per continent; the second pushes each window as it closes, as Server-Sent Events (the
WebSocket's ``market`` channel carries the same). Both need the Pro plan (``analytics:read``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.core.events import UNKNOWN_CONTINENT
from gpubroker.core.geo import CONTINENTS
from gpubroker.gateway import params
from gpubroker.gateway.errors import invalid
from gpubroker.gateway.identity.access import Requires, caller_identity
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.realtime.hub import Event
from gpubroker.gateway.realtime.market import render
from gpubroker.gateway.realtime.stream import event_stream
from gpubroker.gateway.responses import respond
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["analytics"], auth=Requires(Permission.ANALYTICS))

TTL_S = 1.0
"""A repeated GET is answered from the fast path for this long: windows close once a minute."""


class MarketParams(Schema):
    model_config = ConfigDict(extra="forbid")

    gpu: Annotated[
        list[params.Word] | None,
        Field(max_length=params.MAX_VALUES, description="GPU types, as for the offer list (default: all)."),
    ] = None
    continent: Annotated[
        list[params.Word] | None,
        Field(description=", ".join(CONTINENTS) + f" or {UNKNOWN_CONTINENT} (default: every one, and all together)."),
    ] = None
    window: Annotated[Literal["1m"], Field(description="Window length; 1m (one minute) is the one computed.")] = "1m"


class StreamParams(MarketParams):
    last_event_id: Annotated[
        str | None, Field(description="Resume after this event id (as the Last-Event-ID header does).")
    ] = None


class MarketWindow(Schema):
    gpu_type: str
    continent: str | None = Field(description="null: every continent together.")
    window_start: datetime
    window_end: datetime
    count: int = Field(description="Price updates whose time fell in the window.")
    min_price_per_gpu: float
    mean_price_per_gpu: float
    max_price_per_gpu: float


class MarketAnswer(Schema):
    window: str
    items: list[MarketWindow]
    analytics: dict[str, object] = Field(description="Whether the stream analytics are flowing, as /health says.")


FIELDS = params.field_names(MarketParams)
STREAM_FIELDS = params.field_names(StreamParams)


def _chosen(filters: MarketParams) -> tuple[frozenset[str], frozenset[str]]:
    continents = frozenset(name.lower() for name in params.split(filters.continent))
    known = (*CONTINENTS, UNKNOWN_CONTINENT)
    unknown = sorted(continents - set(known))
    if unknown:
        raise invalid("continent", f"unknown continent {unknown[0]!r}; one of: {', '.join(known)}")
    return params.gpu_types(filters.gpu), continents


@router.get(
    "/market",
    response={200: MarketAnswer, 422: Error},
    summary="The latest 1-minute window of per-GPU prices, per GPU type and per GPU type and continent",
)
async def get_market(request: HttpRequest, filters: Query[MarketParams]) -> HttpResponse:
    """The latest closed 1-minute window of per-GPU prices per GPU type, over every continent
    and per continent, from the stream analytics."""
    params.reject_unknown(request.GET.keys(), FIELDS)
    gpu_types, continents = _chosen(filters)
    runtime = current()
    windows = runtime.market.windows(gpu_types, continents)
    body = orjson.dumps(
        {
            "window": filters.window,
            "items": [render(window) for window in windows],
            "analytics": runtime.market.health(datetime.now(UTC)),
        }
    )
    return respond(request, runtime, "api/v2/analytics/market", body, fingerprint=None, ttl_s=TTL_S)


@router.get(
    "/market/stream",
    response={200: None, 422: Error},
    summary="Each 1-minute window of per-GPU prices as it closes, as Server-Sent Events (resume with Last-Event-ID)",
)
async def stream_market(request: HttpRequest, filters: Query[StreamParams]) -> StreamingHttpResponse:
    """Each 1-minute window of per-GPU prices as it closes, as Server-Sent Events (resume with
    Last-Event-ID)."""
    params.reject_unknown(request.GET.keys(), STREAM_FIELDS)
    gpu_types, continents = _chosen(filters)

    def accepts(event: Event) -> bool:
        if event.kind != "market":
            return False
        if gpu_types and event.gpu_type not in gpu_types:
            return False
        return not continents or orjson.loads(event.data)["continent"] in continents

    owner = caller_identity(request).user_id
    return event_stream(request, current().hub, accepts, filters.last_event_id, owner)
