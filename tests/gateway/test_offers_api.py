import asyncio
import re
from datetime import UTC, datetime

import pytest

from gpubroker.core import events
from tests.gateway.conftest import NOW, offer, succeeded
from tests.gateway.conftest import GatewayClient as AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)

CATALOGUE = [
    offer("vastai", "1", "RTX 4090", "0.40"),
    offer("vastai", "2", "RTX 4090", "0.35"),
    offer("vastai", "3", "H100", "2.10"),
    offer("runpod", "a", "RTX 4090", "0.69"),
    offer("runpod", "b", "A100", "1.19"),
]


async def test_lists_offers_cheapest_first(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE, provider_events=[succeeded("vastai", offers=3), succeeded("runpod", offers=2)])
    response = await client.get("/api/v2/providers")
    assert response.status_code == 200
    body = response.json()
    prices = [item["price_per_hour"] for item in body["items"]]
    assert prices == sorted(prices) and body["total"] == 5
    assert {p["name"]: p["status"] for p in body["providers"]} == {"vastai": "healthy", "runpod": "healthy"}


async def test_gpu_filter_accepts_canonical_and_raw_names(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    for value in ("RTX 4090", "rtx4090", "GeForce RTX 4090"):
        body = (await client.get("/api/v2/providers", {"gpu": value})).json()
        assert {item["gpu_type"] for item in body["items"]} == {"RTX 4090"}
        assert body["total"] == 3
    both = (await client.get("/api/v2/providers", {"gpu": "H100,A100"})).json()
    assert {item["gpu_type"] for item in both["items"]} == {"H100", "A100"}


async def test_cursor_pages_cover_every_offer_once(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    seen, params = [], {"limit": "2", "sort": "-price"}
    while True:
        body = (await client.get("/api/v2/providers", params)).json()
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) == len(CATALOGUE)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"gpu": "Voodoo 5"}, "gpu"),
        ({"sort": "cheapest"}, "sort"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"min_price": "-1"}, "min_price"),
        ({"min_price": "3", "max_price": "1"}, "min_price"),
        ({"availability": "plenty"}, "availability"),
        ({"provider": "nosuchcloud"}, "provider"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client: AsyncClient, publish, params, field) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    response = await client.get("/api/v2/providers", params)
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] == field


@pytest.mark.parametrize("cursor", ["garbage!", "AAAA", "eyJwIjoiMSJ9"])
async def test_tampered_cursor_is_a_400(client: AsyncClient, publish, cursor: str) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    response = await client.get("/api/v2/providers", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "cursor"


async def test_cursor_from_another_query_is_refused(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    cursor = (await client.get("/api/v2/providers", {"limit": "1"})).json()["next_cursor"]
    response = await client.get("/api/v2/providers", {"limit": "1", "gpu": "H100", "cursor": cursor})
    assert response.status_code == 400


async def test_removed_offers_disappear_and_etag_revalidates(client: AsyncClient, publish, runtime) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    first = await client.get("/api/v2/providers")
    assert (await client.get("/api/v2/providers", headers={"if-none-match": first["ETag"]})).status_code == 304
    await runtime.bus.publish(events.OFFERS, CATALOGUE[0].id, None)
    await publish([])
    second = await client.get("/api/v2/providers", headers={"if-none-match": first["ETag"]})
    assert second.status_code == 200 and second.json()["total"] == 4


async def test_snapshot_data_is_labelled_as_such(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE[:3], provider_events=[succeeded("vastai", source="snapshot", offers=3)])
    body = (await client.get("/api/v2/providers")).json()
    [state] = body["providers"]
    assert state["status"] == "degraded" and state["source"] == "snapshot" and state["stale"] is True
    assert state["data_as_of"] == NOW.isoformat()
    assert any("bundled snapshot" in warning and NOW.isoformat() in warning for warning in body["warnings"])


async def test_failing_provider_is_reported_with_a_warning(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    failed = events.ProviderEvent("vastai", "poll.failed", NOW, {"error_type": "ProviderTimeout", "reason": "too slow"})
    await publish(CATALOGUE[:3], provider_events=[succeeded("vastai", offers=3), failed])
    body = (await client.get("/api/v2/providers")).json()
    assert body["total"] == 3
    assert body["providers"][0]["status"] == "degraded" and body["providers"][0]["last_error"] == "too slow"
    assert "too slow" in body["warnings"][0]


async def test_offers_whose_provider_has_not_reported_are_flagged_stale(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    """An instance reading the topics has the offers before their worker's reports: it must not
    present them as fresh."""
    await publish(CATALOGUE[:3])
    body = (await client.get("/api/v2/providers")).json()
    [state] = body["providers"]
    assert state["name"] == "vastai" and state["stale"] is True and state["status"] == "unhealthy"
    assert any(warning.startswith("vastai: no poll of it has been reported") for warning in body["warnings"])


async def test_a_cached_answer_stops_calling_a_provider_fresh_once_its_data_turns_stale(  # type: ignore[no-untyped-def]
    client: AsyncClient, publish, runtime
) -> None:
    """No record comes while a worker is stopped or the bus is away, yet the data ages: an answer
    cached while it was fresh must not go on calling it fresh."""
    now = datetime.now(UTC)
    data = {"source": "live", "data_as_of": now.isoformat(), "offers": 3, "poll_interval_s": 0.5}
    await publish(CATALOGUE[:3], provider_events=[events.ProviderEvent("vastai", "poll.succeeded", now, data)])
    fresh = (await client.get("/api/v2/providers")).json()
    hits = runtime.fastpath.hits
    assert (await client.get("/api/v2/providers")).json() == fresh and runtime.fastpath.hits == hits + 1
    assert fresh["providers"][0]["stale"] is False

    await asyncio.sleep(3 * 0.5 + 0.2)  # past three poll intervals, and nothing published meanwhile

    [state] = (await client.get("/api/v2/providers")).json()["providers"]
    assert state["stale"] is True


async def test_offer_by_id(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish(CATALOGUE)
    response = await client.get(f"/api/v2/providers/{CATALOGUE[2].id}")
    assert response.status_code == 200 and response.json()["gpu_type"] == "H100"
    missing = await client.get("/api/v2/providers/not-an-id")
    assert missing.status_code == 404 and "not-an-id" in missing.json()["detail"][0]["message"]


async def test_health_and_metrics(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([offer("vastai", "x", "Mystery GPU", "1.0", gpu_type="")], provider_events=[succeeded("vastai")])
    health = (await client.get("/health")).json()
    assert health["providers"][0]["name"] == "vastai" and health["status"] == "ok"
    await client.get("/api/v2/providers")
    metrics = (await client.get("/metrics")).content.decode()
    assert 'gpubroker_http_requests_total{method="GET",route="api/v2/providers",status="200"}' in metrics


async def test_offers_without_a_published_price_come_last_and_never_match_a_price_filter(  # type: ignore[no-untyped-def]
    client: AsyncClient, publish
) -> None:
    unpriced = offer("replicate", "a100", "A100", None)
    await publish([*CATALOGUE, unpriced])
    for sort in ("price", "-price"):
        items = (await client.get("/api/v2/providers", {"sort": sort})).json()["items"]
        assert items[-1]["id"] == unpriced.id and items[-1]["price_per_hour"] is None
    pages, params = [], {"limit": "4"}
    while True:
        body = (await client.get("/api/v2/providers", params)).json()
        pages += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert len(pages) == len(set(pages)) == len(CATALOGUE) + 1
    body = (await client.get("/api/v2/providers", {"max_price": "100"})).json()
    assert unpriced.id not in {item["id"] for item in body["items"]}


async def test_prices_are_written_as_plain_decimal_numbers(client: AsyncClient, publish) -> None:  # type: ignore[no-untyped-def]
    """Round and tiny prices keep their digits: ``20``, ``0.000001``, never ``2E+1`` or ``1e-6``."""
    await publish([offer("vastai", "round", "H100", "20"), offer("vastai", "tiny", "H100", "0.000001")])
    text = (await client.get("/api/v2/providers")).content.decode()
    assert '"price_per_hour":20,' in text and '"price_per_hour":0.000001,' in text
    assert not re.search(r"[:,[]-?\d+(\.\d+)?[eE]", text), text  # no JSON number in exponent form
