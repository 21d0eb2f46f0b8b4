"""The public API, version 2 (``/api/v2``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Query

from gpubroker.core.offer import Offer
from gpubroker.gateway import errors, gpus, params
from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.query import DEFAULT_LIMIT, BadCursor, OfferQuery, run_query
from gpubroker.gateway.runtime import GatewayRuntime, current
from gpubroker.gateway.schemas import Error, GpuCatalogue, OfferPage, RankingPage

api = NinjaAPI(
    title="GPUBROKER",
    version="2.0.0",
    description="GPU offers from every provider, normalised to USD per hour for the whole instance.",
    urls_namespace="api-v2",
)
errors.install(api)


@api.get(
    "/providers",
    response={200: OfferPage, 400: Error, 422: Error},
    summary="List GPU offers across providers",
)
async def list_offers(
    request: HttpRequest,
    gpu: list[str] | None = Query(None, description="GPU type(s), e.g. H100 or 'RTX 4090'; repeat or comma-separate."),
    provider: list[str] | None = Query(None, description="Provider name(s), e.g. vastai."),
    min_price: Decimal | None = Query(None, description="Minimum USD per hour for the instance."),
    max_price: Decimal | None = Query(None, description="Maximum USD per hour for the instance."),
    availability: list[str] | None = Query(None, description="available, limited and/or unavailable."),
    sort: str = Query("price", description="price (cheapest first) or -price."),
    limit: int = Query(DEFAULT_LIMIT, description="Page size, 1 to 500."),
    cursor: str | None = Query(None, description="next_cursor from the previous page."),
) -> HttpResponse:
    params.reject_unknown(request.GET.keys(), params.LIST_PARAMS)
    runtime = current()
    query = params.build_query(
        gpu=gpu,
        provider=provider,
        known_providers=runtime.catalog.provider_names(),
        min_price=min_price,
        max_price=max_price,
        availability_values=availability,
        sort=sort,
        limit=limit,
    )
    key = _cache_key("offers", runtime, [query.shape(), query.limit, cursor])
    try:
        body = await runtime.cache.get_or_compute(key, lambda: _render_page(runtime, query, cursor))
    except BadCursor as exc:
        raise errors.ApiError(400, "cursor", str(exc)) from None
    return _json(request, body)


@api.get(
    "/providers/ranking",
    response={200: RankingPage, 400: Error, 422: Error},
    summary="Offers ranked by TOPSIS, with the ideal and anti-ideal points and each offer's closeness",
)
async def rank_offers(
    request: HttpRequest,
    gpu: list[str] | None = Query(None, description="GPU type(s), as for the list."),
    provider: list[str] | None = Query(None, description="Provider name(s)."),
    min_price: Decimal | None = Query(None),
    max_price: Decimal | None = Query(None),
    availability: list[str] | None = Query(None),
    w_price: float = Query(ranking.DEFAULT_WEIGHTS["price"], description="Weight of a low price."),
    w_performance: float = Query(ranking.DEFAULT_WEIGHTS["performance"], description="Weight of FP16 TFLOPS x GPUs."),
    w_memory: float = Query(ranking.DEFAULT_WEIGHTS["memory"], description="Weight of total GPU memory."),
    w_availability: float = Query(ranking.DEFAULT_WEIGHTS["availability"], description="Weight of availability."),
    limit: int = Query(DEFAULT_LIMIT, description="How many of the best to return, 1 to 500."),
) -> HttpResponse:
    params.reject_unknown(request.GET.keys(), params.RANKING_PARAMS)
    runtime = current()
    query = params.build_query(
        gpu=gpu,
        provider=provider,
        known_providers=runtime.catalog.provider_names(),
        min_price=min_price,
        max_price=max_price,
        availability_values=availability,
        sort="price",
        limit=limit,
    )
    weights = params.weights(price=w_price, performance=w_performance, memory=w_memory, availability=w_availability)
    key = _cache_key("ranking", runtime, [query.shape(), query.limit, sorted(weights.items())])
    return _json(request, await runtime.cache.get_or_compute(key, lambda: _render_ranking(runtime, query, weights)))


@api.get("/providers/{offer_id}", response={200: Offer, 404: Error}, summary="One offer by id")
async def get_offer(request: HttpRequest, offer_id: str) -> HttpResponse:
    offer = current().catalog.offers.get(offer_id)
    if offer is None:
        raise errors.ApiError(404, "offer_id", f"no offer with id {offer_id!r}")
    return _json(request, offer.to_bytes())


@api.get("/gpus", response={200: GpuCatalogue, 422: Error}, summary="The GPU catalogue with datasheet figures")
async def list_gpus(
    request: HttpRequest, vendor: str | None = Query(None, description="nvidia, amd, intel, google or groq.")
) -> HttpResponse:
    params.reject_unknown(request.GET.keys(), frozenset({"vendor"}))
    if vendor is not None and vendor.lower() not in gpus.VENDORS:
        raise errors.invalid("vendor", f"unknown vendor {vendor!r}; one of: {', '.join(gpus.VENDORS)}")
    return _json(request, gpus.rendered(vendor.lower() if vendor else None))


async def _render_page(runtime: GatewayRuntime, query: OfferQuery, cursor: str | None) -> bytes:
    catalog = runtime.catalog
    page = run_query(catalog.offers.values(), query, cursor, runtime.settings.signing_key.encode())
    return orjson.dumps(
        {
            "items": [offer.to_json() for offer in page.items],
            "count": len(page.items),
            "total": page.total,
            "next_cursor": page.next_cursor,
            **catalog.freshness(datetime.now(UTC)),
        }
    )


async def _render_ranking(runtime: GatewayRuntime, query: OfferQuery, weights: dict[str, float]) -> bytes:
    catalog = runtime.catalog
    result = ranking.rank((o for o in catalog.offers.values() if query.matches(o)), weights, query.limit)
    return orjson.dumps(
        {
            "items": [
                {"rank": place, "closeness": round(closeness, 6), "offer": offer.to_json()}
                for place, (offer, closeness) in enumerate(result.offers, start=1)
            ],
            "ranked": result.ranked,
            "excluded": result.excluded,
            "criteria": result.criteria,
            **catalog.freshness(datetime.now(UTC)),
        }
    )


def _cache_key(kind: str, runtime: GatewayRuntime, parts: list[object]) -> str:
    """Rendered answers are keyed by the catalogue's content, so any change makes a new key."""
    return f"{kind}:{runtime.catalog.fingerprint}:{hashlib.sha1(orjson.dumps(parts)).hexdigest()}"


def _json(request: HttpRequest, body: bytes) -> HttpResponse:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response
