"""The list's filters and sorts over HTTP, the JSON-body endpoints, price history and the fast path."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async

from gpubroker.core.offer import Offer
from gpubroker.core.settings import Settings
from gpubroker.gateway import retention
from gpubroker.gateway.models import HealthCheck, PriceObservation
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient as AsyncClient
from tests.gateway.conftest import asgi_client, offer, succeeded

pytestmark = pytest.mark.django_db(transaction=True)


def varied(provider: str, sku: str, gpu: str, price: str, **fields: Any) -> Offer:
    return offer(provider, sku, gpu, price, count=fields.pop("count", 1)).model_copy(update=fields)


CATALOGUE = [
    varied("aws", "p5", "H100", "98.32", count=8, vcpus=192, ram_gb=2048, region="us-east-1", country="US",
           cpu_arch="x86_64", compliance_tags=("soc2", "hipaa"), interconnect=("nvlink", "sxm", "infiniband")),
    varied("aws", "g6", "L4", "0.80", region="eu-central-1", country="DE", cpu_arch="x86_64",
           compliance_tags=("soc2",)),
    varied("vastai", "1", "RTX 4090", "0.35", gpu_memory_gb=24, vcpus=16, region="EU-West", country="NL", spot=True),
    varied("vastai", "2", "H100", "2.10", region="us-west", country="US", resold_from="aws",
           last_updated=datetime.now(UTC)),
    varied("runpod", "a", "A100", "1.19", count=2, gpu_memory_gb=40, region="ap-southeast-1", country="SG",
           cpu_arch="arm64", interconnect=("pcie",)),
]  # fmt: skip


async def ids(client: AsyncClient, params: dict[str, str]) -> set[str]:
    response = await client.get("/api/v2/providers", params)
    assert response.status_code == 200, response.content
    return {item["provider_offer_id"] for item in response.json()["items"]}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"min_gpus": "2"}, {"p5", "a"}),
        ({"max_gpus": "1", "vendor": "nvidia"}, {"g6", "1", "2"}),
        ({"min_gpu_memory": "40", "max_gpu_memory": "40"}, {"a"}),
        ({"min_total_gpu_memory": "200"}, {"p5"}),
        ({"min_vcpus": "16"}, {"p5", "1"}),
        ({"max_price_per_gpu": "1"}, {"g6", "1", "a"}),
        ({"spot": "true"}, {"1"}),
        ({"spot": "false", "resold": "false"}, {"p5", "g6", "a"}),
        ({"region": "eu-west"}, {"1"}),
        ({"region_prefix": "us-,ap"}, {"p5", "2", "a"}),
        ({"continent": "europe"}, {"g6", "1"}),
        ({"compliance": "soc2,hipaa"}, {"p5"}),
        ({"cpu_arch": "arm64"}, {"a"}),
        ({"provider": "aws", "gpu": "H100"}, {"p5"}),
        ({"min_compute_capability": "8.9"}, {"p5", "g6", "1", "2"}),
        ({"min_compute_capability": "9"}, {"p5", "2"}),
        ({"interconnect": "nvlink"}, {"p5"}),
        ({"interconnect": "sxm,infiniband"}, {"p5"}),
        ({"interconnect": "pcie"}, {"a"}),
        ({"interconnect": "pcie", "min_gpus": "4"}, set()),
        ({"max_age_s": "3600"}, {"2"}),  # the others' data is from days ago
    ],
)
async def test_filters(client: AsyncClient, publish, params: dict[str, str], expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    assert await ids(client, params) == expected


async def test_sorts(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)

    async def order(**params: str) -> list[str]:
        body = (await client.get("/api/v2/providers", params)).json()
        return [item["provider_offer_id"] for item in body["items"]]

    assert await order(sort="price_per_gpu") == ["1", "a", "g6", "2", "p5"]
    assert (await order(sort="performance"))[0] == "p5"
    assert (await order(sort="value"))[:2] == ["a", "1"]  # 2x A100 at $1.19, then an RTX 4090 at $0.35
    assert (await order(sort="topsis", w_price="1", w_performance="0", w_memory="0", w_availability="0"))[0] == "1"
    assert (await order(sort="topsis", w_price="0", w_performance="1", w_memory="0", w_availability="0"))[0] == "p5"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"min_gpus": "0"}, "min_gpus"),
        ({"min_gpus": "4", "max_gpus": "2"}, "min_gpus"),
        ({"min_vcpus": "-1"}, "min_vcpus"),
        ({"min_ram": "nan"}, "min_ram"),
        ({"max_price_per_gpu": "inf"}, "max_price_per_gpu"),
        ({"continent": "atlantis"}, "continent"),
        ({"cpu_arch": "sparc"}, "cpu_arch"),
        ({"vendor": "3dfx"}, "vendor"),
        ({"spot": "maybe"}, "spot"),
        ({"sort": "topsis", "w_price": "-1"}, "w_price"),
        ({"w_price": "0", "w_performance": "0", "w_memory": "0", "w_availability": "0"}, "w_price"),
        ({"sort": "cheapest"}, "sort"),
        ({"limit": "501"}, "limit"),
        ({"interconnect": "ethernet"}, "interconnect"),
        ({"max_age_s": "0"}, "max_age_s"),
        ({"min_compute_capability": "ampere"}, "min_compute_capability"),
    ],
)
async def test_bad_filters_are_422s_naming_the_parameter(client: AsyncClient, publish, params, field) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    response = await client.get("/api/v2/providers", params)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] == field


async def test_post_query_takes_the_same_filters_as_json(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    body = {"gpu": ["H100"], "resold": False, "sort": "-price", "limit": 1}
    response = await client.post("/api/v2/providers/query", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert [item["provider_offer_id"] for item in response.json()["items"]] == ["p5"]
    newer = {"interconnect": ["nvlink", "sxm"], "min_compute_capability": 9.0, "max_age_s": 10**9}
    response = await client.post("/api/v2/providers/query", newer, content_type="application/json")
    assert [item["provider_offer_id"] for item in response.json()["items"]] == ["p5"]
    assert response.json()["items"][0]["interconnect"] == ["nvlink", "sxm", "infiniband"]
    for bad, field in (
        ({"colour": "blue"}, "colour"),
        ({"min_gpus": "many"}, "min_gpus"),
        ({"gpu": ["Voodoo"]}, "gpu"),
    ):
        rejected = await client.post("/api/v2/providers/query", bad, content_type="application/json")
        assert rejected.status_code == 422 and rejected.json()["detail"][0]["field"] == field
    garbled = await client.post("/api/v2/providers/query", b"{not json", content_type="application/json")
    assert 400 <= garbled.status_code < 500


async def test_bulk_query_answers_each_query_and_names_the_bad_one(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    body = {"queries": [{"gpu": ["H100"]}, {"gpu": ["Voodoo"]}, {"spot": True}]}
    response = await client.post("/api/v2/providers/bulk/query", body, content_type="application/json")
    assert response.status_code == 200, response.content
    first, second, third = response.json()["results"]
    assert first["total"] == 2 and third["total"] == 1
    assert second["status"] == 422 and second["detail"][0]["field"] == "queries.1.gpu"
    too_many = {"queries": [{}] * 26}
    assert (
        await client.post("/api/v2/providers/bulk/query", too_many, content_type="application/json")
    ).status_code == 422


async def test_decide_names_a_choice_with_reasons(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    body = {"gpu": ["H100", "A100"], "w_price": 1, "w_performance": 0, "w_memory": 0, "w_availability": 0}
    decision = (await client.post("/api/v2/providers/decide", body, content_type="application/json")).json()
    assert decision["choice"]["offer"]["provider_offer_id"] == "a"  # the cheapest of the three
    [reason] = decision["choice"]["reasons"]
    assert reason["criterion"] == "price" and reason["beats"] == 1.0 and "cheaper than 100%" in reason["text"]
    assert len(decision["alternatives"]) == 2 and decision["matched"] == 3
    nothing = await client.post("/api/v2/providers/decide", {"gpu": ["MI300X"]}, content_type="application/json")
    assert nothing.json()["choice"] is None and nothing.json()["reason"] == "no offer matches the filters"


def hours_ago(hours: int) -> datetime:
    """A recent whole hour. History is pruned, and the ranges asked of it bounded, by the real
    clock: rows stamped at the fixed NOW would age out of both."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def zulu(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_price_history_buckets_observed_prices(client: AsyncClient, publish, runtime: GatewayRuntime) -> None:  # type: ignore[no-untyped-def]
    at = hours_ago(2)
    first = offer("vastai", "1", "RTX 4090", "0.40").model_copy(update={"last_updated": at})
    later = first.model_copy(update={"price_per_hour": Decimal("0.30"), "last_updated": at + timedelta(minutes=5)})
    await publish([first])
    await publish([later])
    await runtime.ingest.flush()
    params = {"gpu": "RTX 4090", "since": zulu(at - timedelta(hours=1)), "until": zulu(at + timedelta(hours=1))}
    body = (await client.get("/api/v2/analytics/price-history", params)).json()
    [series] = body["series"]
    [point] = series["points"]
    assert (series["provider"], point["min"], point["max"], point["observations"]) == ("vastai", 0.3, 0.4, 2)
    for bad, field in (
        ({"since": "2026-11-26T00:00:00"}, "since"),
        ({"bucket": "week"}, "bucket"),
        ({"provider": "x"}, "provider"),
    ):
        response = await client.get("/api/v2/analytics/price-history", bad)
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == field


async def test_retention_keeps_30_days_of_prices_and_7_of_health(publish, runtime: GatewayRuntime) -> None:  # type: ignore[no-untyped-def]
    at = hours_ago(1)
    observed = offer("vastai", "old", "H100", "2.0").model_copy(update={"last_updated": at})
    await publish([observed], provider_events=[dataclasses.replace(succeeded("vastai"), at=at)])
    await runtime.ingest.flush()
    assert await PriceObservation.objects.acount() == 1 and await HealthCheck.objects.acount() == 1
    prune = sync_to_async(retention.prune)
    nothing = {"price_observations": 0, "health_checks": 0, "audit_events": 0}
    assert await prune(Settings(), at + timedelta(days=6)) == nothing
    assert await prune(Settings(), at + timedelta(days=8)) == {**nothing, "health_checks": 1}
    assert await prune(Settings(), at + timedelta(days=31)) == {**nothing, "price_observations": 1}


async def test_concurrent_misses_on_one_query_render_once(
    client: AsyncClient, publish, runtime: GatewayRuntime
) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    calls = 0
    real_page = runtime.pager.page

    async def counting_page(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # long enough for every request to arrive while it computes
        return await real_page(*args)

    runtime.pager.page = counting_page  # type: ignore[method-assign]
    responses = await asyncio.gather(*(client.get("/api/v2/providers", {"gpu": "H100"}) for _ in range(20)))
    assert {r.status_code for r in responses} == {200} and calls == 1


async def test_repeated_gets_come_from_the_fast_path(publish, runtime: GatewayRuntime) -> None:  # type: ignore[no-untyped-def]
    call = asgi_client(runtime)
    await publish(CATALOGUE)
    status, headers, body = await call.get("/api/v2/providers", b"gpu=H100")
    assert status == 200 and runtime.fastpath.hits == 0
    status, again, zipped = await call.get("/api/v2/providers", b"gpu=H100", [(b"accept-encoding", b"gzip, br")])
    assert status == 200 and runtime.fastpath.hits == 1
    assert again[b"content-encoding"] == b"gzip" and gzip.decompress(zipped) == body
    assert again[b"etag"] == headers[b"etag"]
    status, _, empty = await call.get("/api/v2/providers", b"gpu=H100", [(b"if-none-match", headers[b"etag"])])
    assert (status, empty, runtime.fastpath.hits) == (304, b"", 2)

    await publish([CATALOGUE[0].model_copy(update={"price_per_hour": Decimal("50")})])
    for _ in range(200):  # the popular answer is re-rendered for the new catalogue off the request path
        if runtime.fastpath.lookup("/api/v2/providers", b"gpu=H100") is not None:
            break
        await asyncio.sleep(0.01)
    status, changed, body = await call.get("/api/v2/providers", b"gpu=H100")
    assert runtime.fastpath.hits == 3, "the refreshed answer is served from the fast path"
    assert changed[b"etag"] != headers[b"etag"] and 50.0 in {i["price_per_hour"] for i in orjson.loads(body)["items"]}


async def test_a_changed_catalogue_is_never_answered_from_the_fast_path(publish, runtime: GatewayRuntime) -> None:  # type: ignore[no-untyped-def]
    call = asgi_client(runtime)
    await publish(CATALOGUE)
    await call.get("/api/v2/providers", b"gpu=H100&limit=2")
    runtime.catalog.apply_offer(CATALOGUE[0].id, CATALOGUE[0].model_copy(update={"price_per_hour": Decimal("50")}))
    assert runtime.fastpath.lookup("/api/v2/providers", b"gpu=H100&limit=2") is None
    status, _, body = await call.get("/api/v2/providers", b"gpu=H100&limit=2")
    assert status == 200 and runtime.fastpath.hits == 0
    assert 50.0 in {i["price_per_hour"] for i in orjson.loads(body)["items"]}


async def test_openapi_document_lists_every_endpoint_and_filter(client: AsyncClient, runtime: GatewayRuntime) -> None:
    document = (await client.get("/api/v2/openapi.json")).json()
    assert {
        "/api/v2/providers",
        "/api/v2/providers/ranking",
        "/api/v2/providers/query",
        "/api/v2/providers/bulk/query",
        "/api/v2/providers/decide",
        "/api/v2/providers/{offer_id}",
        "/api/v2/gpus",
        "/api/v2/analytics/price-history",
    } <= document["paths"].keys()
    listed = {p["name"] for p in document["paths"]["/api/v2/providers"]["get"]["parameters"]}
    assert {"min_gpus", "continent", "compliance", "cpu_arch", "max_price_per_gpu", "sort", "cursor"} <= listed


async def test_fast_path_hits_are_exported_to_prometheus(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    call = asgi_client(runtime)
    for _ in range(3):
        await call.get("/api/v2/gpus")
    _, _, metrics = await call.get("/metrics")
    assert 'gpubroker_fast_path_hits_total{route="api/v2/gpus",status="200"}' in metrics.decode()


async def test_nul_characters_are_refused_naming_the_parameter(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    response = await client.get("/api/v2/providers", {"region": "eu\x00west"})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "region"
