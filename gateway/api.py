"""The public API, version 2 (``/api/v2``): offers, their ranking and the GPU catalogue.

Every answer about offers is rendered once per catalogue state and query, cached in both tiers
under a key that starts with the catalogue's fingerprint (so any change makes new keys, and
instances that consumed the same records share entries), and sent through ``respond``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Query, Schema
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from gpubroker.core.offer import Offer
from gpubroker.gateway import analytics, decide, errors, gpus, market, params
from gpubroker.gateway.agents import api as agents
from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.paging import BadCursor
from gpubroker.gateway.catalog.query import OfferQuery, matching
from gpubroker.gateway.features import admin, alerts, favorites, integrations, webhooks
from gpubroker.gateway.identity import api as auth
from gpubroker.gateway.identity.access import Parameters, Requires, caller_identity
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.parser import StrictParser
from gpubroker.gateway.realtime import stream
from gpubroker.gateway.renderer import OrjsonRenderer
from gpubroker.gateway.rentals import api as rentals
from gpubroker.gateway.responses import respond
from gpubroker.gateway.runtime import GatewayRuntime, current
from gpubroker.gateway.schemas import (
    BulkPage,
    Decision,
    Error,
    GpuCatalogue,
    OfferPage,
    PriceHistory,
    RankingPage,
)

api = NinjaAPI(
    title="GPUBROKER",
    version="2.1.0",
    description="GPU offers from every provider, normalised to USD per hour for the whole instance.",
    urls_namespace="api-v2",
    parser=StrictParser(),
    renderer=OrjsonRenderer(),
    docs_url=None,
    openapi_url=None,
)
errors.install(api)
api.add_router("/auth", auth.router)
api.add_router("/users", favorites.router)
api.add_router("/alerts", alerts.router)
api.add_router("/webhooks", webhooks.router)
api.add_router("/providers/config/integrations", integrations.router)
api.add_router("/admin", admin.router)
api.add_router("/analytics", market.router)
api.add_router("/rentals", rentals.router)
api.add_router("/agents", agents.router)


READ = Requires(Permission.READ_OFFERS)
QUERY = Requires(Permission.QUERY_OFFERS)
BASIC_LIST = Parameters(
    basic=frozenset({"gpu", "provider", "min_price", "max_price", "region", "availability", "sort", "limit", "cursor"}),
    basic_values={"sort": frozenset({"price", "-price"})},
    need=Permission.QUERY_OFFERS,
)
"""What anonymous and Free callers may filter and sort the list by (SRS 8.2)."""
LIST_FIELDS = params.field_names(params.ListParams)
RANKING_FIELDS = params.field_names(params.RankingParams)
STREAM_FIELDS = params.field_names(stream.StreamParams)
MAX_BULK_QUERIES = 25


class BulkQuery(Schema):
    queries: Annotated[
        list[dict[str, Any]],
        Field(
            min_length=1,
            max_length=MAX_BULK_QUERIES,
            description="Each the body of POST /providers/query; each is checked and answered on its own.",
        ),
    ]


@api.get(
    "/providers",
    response={200: OfferPage, 400: Error, 422: Error},
    auth=Requires(Permission.READ_OFFERS, parameters=BASIC_LIST),
    tags=["offers"],
    summary="List GPU offers across providers",
)
async def list_offers(request: HttpRequest, filters: Query[params.ListParams]) -> HttpResponse:
    """Every provider's offers, filtered, sorted and paged by cursor. Anonymous and Free callers
    may use the basic filters (gpu, provider, min_price, max_price, region, availability, sort
    by price, limit, cursor); every other filter, sort and the TOPSIS weights need the Pro plan.
    Each answer says how fresh each provider's data is."""
    params.reject_unknown(request.GET.keys(), LIST_FIELDS)
    runtime, index = _snapshot()
    query = params.list_query(filters, runtime.catalog.provider_names())

    async def render(index: OfferIndex) -> bytes:
        return await _offer_page(runtime, index, query, filters.cursor)

    refresh = render if filters.cursor is None else None  # first pages are what is asked again
    body = await render(index)
    return respond(request, runtime, "api/v2/providers", body, fingerprint=index.fingerprint, refresh=refresh)


@api.get(
    "/providers/ranking",
    response={200: RankingPage, 422: Error},
    auth=QUERY,
    tags=["offers"],
    summary="Offers ranked by TOPSIS, with the ideal and anti-ideal points and each offer's closeness",
)
async def rank_offers(request: HttpRequest, filters: Query[params.RankingParams]) -> HttpResponse:
    """The best offers matching the list's filters by TOPSIS over a low price, performance,
    total GPU memory and availability, with each criterion's weight, ideal and anti-ideal point,
    each offer's closeness, and how many offers were left out."""
    params.reject_unknown(request.GET.keys(), RANKING_FIELDS)
    runtime, index = _snapshot()
    query = OfferQuery(
        params.filters(filters, runtime.catalog.provider_names()), "topsis", params.weights(filters), filters.limit
    )

    async def render(index: OfferIndex) -> bytes:
        key = _cache_key(index, "ranking", [query.shape(), query.limit])
        return await runtime.cache.get_or_compute(key, lambda: _render_ranking(runtime, index, query))

    body = await render(index)
    return respond(request, runtime, "api/v2/providers/ranking", body, fingerprint=index.fingerprint, refresh=render)


@api.post(
    "/providers/query",
    response={200: OfferPage, 400: Error, 422: Error},
    auth=QUERY,
    tags=["offers"],
    summary="List GPU offers, with the filters as a JSON body",
)
async def query_offers(request: HttpRequest, body: params.ListParams) -> HttpResponse:
    """The offer list with its parameters as a JSON body (lists as JSON arrays), for queries too
    long for a URL."""
    runtime, index = _snapshot()
    page = await _offer_page(runtime, index, params.list_query(body, runtime.catalog.provider_names()), body.cursor)
    return respond(request, runtime, "api/v2/providers/query", page, fingerprint=index.fingerprint)


@api.post(
    "/providers/bulk/query",
    response={200: BulkPage, 422: Error},
    auth=QUERY,
    tags=["offers"],
    summary=f"Up to {MAX_BULK_QUERIES} queries in one request, each answered as by POST /providers/query",
)
async def bulk_query_offers(request: HttpRequest, body: BulkQuery) -> HttpResponse:
    """Up to 25 queries in one request, each checked and answered on its own: a page, or a 422
    naming ``queries.<n>.<field>``."""
    runtime, index = _snapshot()
    results: list[orjson.Fragment | dict[str, Any]] = []
    for position, raw in enumerate(body.queries):
        try:
            item = params.ListParams.model_validate(raw)
        except PydanticValidationError as exc:
            detail = [
                {"field": ".".join(map(str, (f"queries.{position}", *error["loc"]))), "message": error["msg"]}
                for error in exc.errors()
            ]
            results.append({"status": 422, "detail": detail})
            continue
        try:
            query = params.list_query(item, runtime.catalog.provider_names())
            results.append(orjson.Fragment(await _offer_page(runtime, index, query, item.cursor)))
        except errors.ApiError as exc:
            field = f"queries.{position}.{exc.field}" if exc.field else f"queries.{position}"
            results.append({"status": exc.status, "detail": [{"field": field, "message": exc.message}]})
    page = orjson.dumps({"results": results, "count": len(results)})
    return respond(request, runtime, "api/v2/providers/bulk/query", page, fingerprint=index.fingerprint)


@api.post(
    "/providers/decide",
    response={200: Decision, 422: Error},
    auth=QUERY,
    tags=["offers"],
    summary="One recommended offer (and runners-up) for the given needs, with the reasons, for agents",
)
async def decide_offer(request: HttpRequest, body: decide.DecideParams) -> HttpResponse:
    """For agents: the TOPSIS choice among the matching offers, runners-up, and for each a
    reason per criterion."""
    runtime, index = _snapshot()
    query = OfferQuery(params.filters(body, runtime.catalog.provider_names()), "topsis", params.weights(body))
    key = _cache_key(index, "decide", [query.shape(), body.alternatives])
    rendered = await runtime.cache.get_or_compute(
        key, lambda: _rendered(decide.decide(index, query, body.alternatives), runtime)
    )
    return respond(request, runtime, "api/v2/providers/decide", rendered, fingerprint=index.fingerprint)


@api.get(
    "/providers/stream",
    response={200: None, 422: Error},
    auth=QUERY,
    tags=["offers"],
    summary="Changes to the offers matching the list's filters, as Server-Sent Events (resume with Last-Event-ID)",
)
async def stream_offers(request: HttpRequest, filters: Query[stream.StreamParams]) -> StreamingHttpResponse:
    """Server-Sent Events: price, availability and health changes to the offers matching the
    list's filters, the market's price alerts about them and the caller's own alerts. Event ids
    are bus positions: reconnect to any instance with Last-Event-ID to get what was missed."""
    params.reject_unknown(request.GET.keys(), STREAM_FIELDS)
    runtime = current()
    offer_filters = params.filters(filters, runtime.catalog.provider_names())
    owner = caller_identity(request).user_id
    return stream.open_stream(request, runtime.hub, offer_filters, filters.last_event_id, owner)


@api.get(
    "/providers/{offer_id}",
    response={200: Offer, 404: Error, 422: Error},
    auth=READ,
    tags=["offers"],
    summary="One offer by id",
)
async def get_offer(request: HttpRequest, offer_id: str) -> HttpResponse:
    """One offer by its id (stable across polls and gateway instances)."""
    params.reject_unknown(request.GET.keys(), frozenset())
    runtime = current()
    rendered = runtime.catalog.rendered.get(offer_id)
    if rendered is None:
        raise errors.ApiError(404, "offer_id", f"no offer with id {offer_id!r}")
    return respond(request, runtime, "api/v2/providers/{offer_id}", rendered, fingerprint=runtime.catalog.fingerprint)


@api.get(
    "/gpus",
    response={200: GpuCatalogue, 422: Error},
    auth=READ,
    tags=["gpus"],
    summary="The GPU catalogue with datasheet figures",
)
async def list_gpus(
    request: HttpRequest, vendor: str | None = Query(None, description="nvidia, amd, intel, google or groq.")
) -> HttpResponse:
    """The GPU catalogue: every known GPU type with its datasheet figures per memory size and
    form factor."""
    params.reject_unknown(request.GET.keys(), frozenset({"vendor"}))
    if vendor is not None and vendor.lower() not in gpus.VENDORS:
        raise errors.invalid("vendor", f"unknown vendor {vendor!r}; one of: {', '.join(gpus.VENDORS)}")
    runtime = current()
    body = gpus.rendered(vendor.lower() if vendor else None)
    return respond(request, runtime, "api/v2/gpus", body, fingerprint=None, ttl_s=runtime.settings.cache_static_ttl_s)


@api.get(
    "/analytics/price-history",
    response={200: PriceHistory, 422: Error},
    auth=Requires(Permission.ANALYTICS),
    tags=["analytics"],
    summary="Observed prices over time, per GPU type and provider, in hourly or daily buckets",
)
async def get_price_history(request: HttpRequest, filters: Query[analytics.HistoryParams]) -> HttpResponse:
    """Observed prices over time per GPU type and provider, in hourly or daily buckets (minimum,
    maximum, mean, observations); history is kept 30 days."""
    params.reject_unknown(request.GET.keys(), params.field_names(analytics.HistoryParams))
    runtime = current()
    query = analytics.history_query(
        filters, runtime.catalog.provider_names(), datetime.now(UTC), kept_days=runtime.settings.offer_history_days
    )
    body = await runtime.cache.get_or_compute(
        f"history:{query.cache_key()}", lambda: analytics.render(query), ttl_s=runtime.settings.cache_ttl_s
    )
    return respond(request, runtime, "api/v2/analytics/price-history", body, fingerprint=None)


def _snapshot() -> tuple[GatewayRuntime, OfferIndex]:
    runtime = current()
    return runtime, runtime.index()


async def _offer_page(runtime: GatewayRuntime, index: OfferIndex, query: OfferQuery, cursor: str | None) -> bytes:
    key = _cache_key(index, "offers", [query.shape(), query.limit, cursor])

    async def render() -> bytes:
        try:
            page = await runtime.pager.page(index, query, cursor)
        except BadCursor as exc:
            raise errors.ApiError(400, "cursor", str(exc)) from None
        items = [orjson.Fragment(rendered) for rendered in page.rendered]
        answer = {"items": items, "count": len(items), "total": page.total, "next_cursor": page.next_cursor}
        return await _rendered(answer, runtime)

    return await runtime.cache.get_or_compute(key, render)


async def _render_ranking(runtime: GatewayRuntime, index: OfferIndex, query: OfferQuery) -> bytes:
    result = ranking.rank(index, matching(index, query), query.weights, query.limit)
    items = [
        {"rank": place, "closeness": round(float(closeness), 6), "offer": orjson.Fragment(index.rendered[row])}
        for place, (row, closeness) in enumerate(zip(result.rows, result.closeness, strict=True), start=1)
    ]
    answer = {"items": items, "ranked": result.ranked, "excluded": result.excluded, "criteria": result.criteria}
    return await _rendered(answer, runtime)


async def _rendered(answer: dict[str, Any], runtime: GatewayRuntime) -> bytes:
    """The answer with the catalogue's freshness block: per-provider state and warnings."""
    return orjson.dumps({**answer, **runtime.catalog.freshness(datetime.now(UTC))})


def _cache_key(index: OfferIndex, kind: str, parts: list[object]) -> str:
    """Keys start with the catalogue's fingerprint: a new instance warms exactly the current ones."""
    return f"{index.fingerprint}:{kind}:{hashlib.sha1(orjson.dumps(parts)).hexdigest()}"
