"""The internal API the DAGs call, through the whole application with a platform service token:
webhook delivery records and what follows from them, plugin-health verdicts, provider stats and
pricing, price alerts, query counts and warming, the FX table and retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from gpubroker.core import events, fx
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.settings import Settings
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import PriceObservation, Webhook, WebhookDelivery
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import OPERATOR_KEY, GatewayClient, asgi_client, offer, resolve_test_names, succeeded
from tests.gateway.test_identity import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def runtime(clean_env: pytest.MonkeyPatch) -> AsyncIterator[GatewayRuntime]:
    """Retries a second apart and a webhook disabled after a minute of failures, so that what a
    day of them does can be shown in a test."""
    settings = Settings(
        secret_key="test-key",
        index_refresh_s=0,
        admin_api_key=OPERATOR_KEY,
        plugins=["vastai", "runpod"],
        webhook_retry_initial_s=1,
        webhook_retry_window_s=3,
        webhook_disable_after_s=60,
    )
    runtime = GatewayRuntime(settings, bus=MemoryBus())
    runtime.resolver = resolve_test_names
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
def platform(runtime: GatewayRuntime) -> GatewayClient:
    token, _ = runtime.tokens.issue("service:airflow", "admin", "service")
    return GatewayClient(asgi_client(runtime), {"authorization": f"Bearer {token}"})


@pytest.fixture
def operator(runtime: GatewayRuntime) -> GatewayClient:
    return GatewayClient(asgi_client(runtime))


async def settle(runtime: GatewayRuntime) -> None:
    await runtime.bus.flush()
    for _ in range(200):
        await asyncio.sleep(0)


async def published(runtime: GatewayRuntime, topic: str) -> list[bytes]:
    records = []

    async def read() -> None:
        async for record in runtime.bus.subscribe([topic], from_beginning=True):
            records.append(record.value)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    reader.cancel()
    return records


# --- webhook deliveries ---------------------------------------------------------------------


async def enterprise_webhook() -> tuple[Any, Webhook]:
    user, key = await make_user(Plan.ENTERPRISE)
    hook = await Webhook.objects.acreate(user=user, url="https://hooks.example.com/in", events=["price.alert"])
    return (user, key), hook


def delivery(hook: Webhook, number: int = 1) -> dict[str, Any]:
    envelope = events.WebhookDelivery(
        f"dlv_test{number:04d}",
        hook.pk,
        hook.user_id,
        hook.url,
        "price.alert",
        b'{"id": "x"}',
        {"X-GPUBROKER-Delivery": f"dlv_test{number:04d}"},
        datetime.now(UTC),
    )
    data = orjson.loads(envelope.encode())
    del data["schema"]
    return data


def attempt(delivery_id: str, number: int, status: int | None, kind: str | None = None) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "attempt": number,
        "at": datetime.now(UTC).isoformat(),
        "status_code": status,
        "error_kind": kind,
        "latency_ms": 12.5,
    }


async def test_a_delivery_is_sent_once_and_every_attempt_is_listed_to_its_owner(
    platform: GatewayClient, operator: GatewayClient
) -> None:
    (_, key), hook = await enterprise_webhook()
    first = delivery(hook)
    answer = (await platform.post("/internal/v1/webhooks/deliveries", {"deliveries": [first, first]})).json()
    assert [a["action"] for a in answer["deliveries"]] == ["send", "skip"]
    failed = {**attempt(first["delivery_id"], 1, 503), "body": first["body"], "headers": first["headers"]}
    recorded = await platform.post("/internal/v1/webhooks/attempts", {"attempts": [failed]})
    assert recorded.json()["deliveries"][0]["status"] == "pending"
    again = (await platform.post("/internal/v1/webhooks/deliveries", {"deliveries": [first]})).json()
    assert again["deliveries"][0]["action"] == "skip", "consumed again: the record keeps it from a second send"
    await asyncio.sleep(1.1)
    due = (await platform.post("/internal/v1/webhooks/deliveries/due", {"limit": 10})).json()["deliveries"]
    assert [(d["delivery_id"], d["attempt"]) for d in due] == [(first["delivery_id"], 2)]
    assert (due[0]["body"], due[0]["headers"]) == (first["body"], first["headers"]), "kept for the retry, as signed"
    assert (await platform.post("/internal/v1/webhooks/deliveries/due", {})).json()["deliveries"] == [], "leased"
    await platform.post("/internal/v1/webhooks/attempts", {"attempts": [attempt(first["delivery_id"], 2, 200)]})
    listed = await operator.get(f"/api/v2/webhooks/{hook.pk}/deliveries", headers={"x-api-key": key})
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["status"] == "delivered"
    assert [(a["number"], a["status_code"], a["outcome"]) for a in row["attempts"]] == [
        (1, 503, "retry"),
        (2, 200, "delivered"),
    ]
    stranger_key = (await make_user(Plan.ENTERPRISE))[1]
    other = await operator.get(f"/api/v2/webhooks/{hook.pk}/deliveries", headers={"x-api-key": stranger_key})
    assert other.status_code == 404


async def test_a_4xx_is_final_and_an_exhausted_delivery_goes_to_the_dead_letter_topic(
    platform: GatewayClient, runtime: GatewayRuntime
) -> None:
    _, hook = await enterprise_webhook()
    final, slow = delivery(hook, 1), delivery(hook, 2)
    await platform.post("/internal/v1/webhooks/deliveries", {"deliveries": [final, slow]})
    answer = await platform.post(
        "/internal/v1/webhooks/attempts",
        {"attempts": [attempt(final["delivery_id"], 1, 410), attempt(slow["delivery_id"], 1, None, "timeout")]},
    )
    assert [d["status"] for d in answer.json()["deliveries"]] == ["failed", "pending"]
    await WebhookDelivery.objects.filter(delivery_id=slow["delivery_id"]).aupdate(
        first_attempt_at=datetime.now(UTC) - timedelta(seconds=10)
    )
    answer = await platform.post("/internal/v1/webhooks/attempts", {"attempts": [attempt(slow["delivery_id"], 2, 429)]})
    assert answer.json()["deliveries"][0]["status"] == "exhausted" and answer.json()["dead_lettered"] == 1
    dead = await published(runtime, events.dead_letter_topic(events.WEBHOOKS))
    assert [events.WebhookDelivery.decode(value).delivery_id for value in dead] == [slow["delivery_id"]]


async def test_a_webhook_failing_for_the_whole_window_is_disabled_and_its_owner_told(
    platform: GatewayClient, runtime: GatewayRuntime, operator: GatewayClient
) -> None:
    (_, key), hook = await enterprise_webhook()
    first, later = delivery(hook, 1), delivery(hook, 2)
    await platform.post("/internal/v1/webhooks/deliveries", {"deliveries": [first, later]})
    await platform.post("/internal/v1/webhooks/attempts", {"attempts": [attempt(first["delivery_id"], 1, 500)]})
    await Webhook.objects.filter(pk=hook.pk).aupdate(failing_since=datetime.now(UTC) - timedelta(seconds=61))
    answer = await platform.post(
        "/internal/v1/webhooks/attempts", {"attempts": [attempt(later["delivery_id"], 1, 500)]}
    )
    assert answer.json()["disabled_webhooks"] == [hook.pk]
    row = await Webhook.objects.aget(pk=hook.pk)
    assert not row.active and "failed for" in row.disabled_reason
    assert (await WebhookDelivery.objects.aget(delivery_id=first["delivery_id"])).status == "cancelled"
    [notice] = [events.decode_alert(value) for value in await published(runtime, events.PRICE_ALERTS)]
    assert isinstance(notice, events.AccountNotice) and notice.user_id == hook.user_id
    assert notice.kind == "webhook.disabled" and notice.data["webhook_id"] == hook.pk
    [listed] = (await operator.get("/api/v2/webhooks", headers={"x-api-key": key})).json()
    assert listed["active"] is False and listed["disabled_reason"]


async def test_attempt_reports_are_checked(platform: GatewayClient) -> None:
    bad = await platform.post("/internal/v1/webhooks/attempts", {"attempts": [{"delivery_id": "x", "attempt": 0}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"]


# --- plugin health ----------------------------------------------------------------------------


def report(provider: str, ok: bool, run: str) -> dict[str, Any]:
    return {"provider": provider, "checks": [{"name": "conformance", "ok": ok, "detail": "d"}], "run_id": run}


async def test_three_failed_runs_raise_provider_degraded_until_a_run_passes(
    platform: GatewayClient, runtime: GatewayRuntime, operator: GatewayClient
) -> None:
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", succeeded("vastai").encode())
    await settle(runtime)
    for run in ("r1", "r2", "r2", "r3"):  # r2 twice: a retried task reports once
        verdict = (await platform.post("/internal/v1/providers/health-report", report("vastai", False, run))).json()
    assert verdict["consecutive_failures"] == 3 and verdict["degraded"]
    await settle(runtime)
    assert runtime.catalog.providers["vastai"].status == "degraded"
    health = (await operator.get("/health")).json()
    assert health["plugin_health"]["vastai"]["consecutive_failures"] == 3
    [state] = [p for p in health["providers"] if p["name"] == "vastai"]
    assert state["status"] == "degraded" and "plugin-health" in state["checks_failing"]
    raised = [events.ProviderEvent.decode(v) for v in await published(runtime, events.PROVIDER_EVENTS)]
    assert [e.event_type for e in raised] == ["poll.succeeded", events.PROVIDER_DEGRADED]
    await platform.post("/internal/v1/providers/health-report", report("vastai", True, "r4"))
    await settle(runtime)
    assert runtime.catalog.providers["vastai"].status == "healthy"
    summary = (await platform.get("/internal/v1/providers/health-summary")).json()
    assert summary["providers"][0]["passed"] and not summary["providers"][0]["degraded"]
    unknown = await platform.post("/internal/v1/providers/health-report", report("nosuch", True, "r5"))
    assert unknown.status_code == 404


async def test_stats_list_installed_providers_with_their_state(
    platform: GatewayClient, runtime: GatewayRuntime
) -> None:
    await runtime.bus.publish(events.OFFERS, "o", events.encode_offer(offer("vastai", "a", "H100", "2.5")))
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", succeeded("vastai", offers=1).encode())
    await settle(runtime)
    rows = {row["name"]: row for row in (await platform.get("/internal/v1/providers/stats")).json()["providers"]}
    assert set(rows) == {"vastai", "runpod"}
    assert rows["vastai"]["installed"] and rows["vastai"]["offers"] == 1 and rows["vastai"]["min_price"] == 2.5
    assert rows["runpod"]["status"] == "unknown"


async def test_pricing_of_one_offer(platform: GatewayClient, runtime: GatewayRuntime) -> None:
    item = offer("vastai", "a", "H100", "20", count=8)
    await runtime.bus.publish(events.OFFERS, item.id, events.encode_offer(item))
    await settle(runtime)
    answer = await platform.get(f"/internal/v1/providers/pricing/{item.id}")
    assert answer.status_code == 200 and b'"price_per_hour":20,' in answer.content
    assert answer.json()["price_per_gpu_hour"] == 2.5
    assert (await platform.get("/internal/v1/providers/pricing/nope")).status_code == 404


async def test_a_price_alert_goes_to_every_instance_through_the_bus(
    platform: GatewayClient, runtime: GatewayRuntime
) -> None:
    item = offer("vastai", "a", "H100", "2")
    await runtime.bus.publish(events.OFFERS, item.id, events.encode_offer(item))
    await settle(runtime)
    body = {"kind": "anomaly", "offer_id": item.id, "old_price": "4", "detail": {"z": 3.4}}
    answer = await platform.post("/internal/v1/notifications/price-alert", body)
    assert answer.status_code == 202 and answer.json()["new_price"] == 2
    [alert] = [events.PriceAlert.decode(v) for v in await published(runtime, events.PRICE_ALERTS)]
    assert alert.kind == "anomaly" and alert.offer_id == item.id and alert.user_id is None
    refused = await platform.post("/internal/v1/notifications/price-alert", {**body, "kind": "rule"})
    assert refused.status_code == 422


# --- cache warming, FX, retention -------------------------------------------------------------


async def test_the_most_asked_queries_are_counted_and_warmed(
    platform: GatewayClient, operator: GatewayClient, runtime: GatewayRuntime
) -> None:
    await runtime.bus.publish(events.OFFERS, "o", events.encode_offer(offer("vastai", "a", "H100", "2.5")))
    await settle(runtime)
    for _ in range(3):
        await operator.get("/api/v2/providers", {"gpu": "H100"})
    await operator.get("/api/v2/providers", {"gpu": "A100"})
    await operator.get("/api/v2/alerts")  # not a cached answer: never counted
    popular = (await platform.get("/internal/v1/cache/popular", {"window_s": "3600"})).json()["queries"]
    assert popular == [
        {"query": "/api/v2/providers?gpu=H100", "count": 3},
        {"query": "/api/v2/providers?gpu=A100", "count": 1},
    ]
    runtime.fastpath._entries.clear()
    queries = ["/api/v2/providers?gpu=H100", "/api/v2/providers?gpu=nope_x", "/api/v2/alerts"]
    warmed = (await platform.post("/internal/v1/cache/warm", {"queries": queries})).json()
    assert [item["status"] for item in warmed["warmed"]] == [200, 422, 404]
    assert runtime.fastpath.lookup("/api/v2/providers", b"gpu=H100") is not None


async def test_a_refreshed_fx_table_is_used_and_shown_and_the_bundled_one_is_the_fallback(
    platform: GatewayClient, operator: GatewayClient
) -> None:
    bundled = fx.configured_rates()
    assert (await operator.get("/health")).json()["fx"]["source"] == "bundled"
    table = {"as_of": "2026-12-01", "source": "ecb-eurofxref", "usd_per_unit": {"EUR": "1.1", "GBP": "1.3"}}
    try:
        stored = await platform.request("PUT", "/internal/v1/fx/rates", body=table)
        assert stored.status_code == 200 and stored.json()["currencies"] == 2
        assert (await operator.get("/health")).json()["fx"] == {
            "as_of": "2026-12-01",
            "source": "ecb-eurofxref",
            "currencies": 2,
        }
        assert fx.rates().usd_per_unit["EUR"] == fx.rates().usd_per_unit["EUR"].__class__("1.1")
        bad = await platform.request("PUT", "/internal/v1/fx/rates", body={**table, "usd_per_unit": {"EUR": "-1"}})
        assert bad.status_code == 422
    finally:
        fx.use(None)
    assert fx.rates() is bundled


async def test_retention_through_the_internal_api(platform: GatewayClient) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    await PriceObservation.objects.acreate(offer_id="x", provider="p", region="r", price_per_hour="1", observed_at=old)
    answer = (await platform.post("/internal/v1/maintenance/prune", {})).json()
    # The runtime's own hourly pass, started with it, may have been first: either way it is gone.
    assert set(answer["removed"]) == {"price_observations", "health_checks", "audit_events"}
    assert not await PriceObservation.objects.filter(observed_at__lt=old + timedelta(days=1)).aexists()
