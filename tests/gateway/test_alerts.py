"""Alert rules and webhooks: what fires, who hears of it, and what is handed to the delivery
service (signed, on ``gpubroker.webhooks``); and the market's alerts pushed to subscribers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gpubroker.core import events
from gpubroker.core.offer import Offer
from gpubroker.gateway.catalog.filters import OfferFilters
from gpubroker.gateway.catalog.rows import Vocabulary
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.realtime.notify import Notifier
from gpubroker.gateway.realtime.rules import Rule, RuleBook
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import AsgiClient, asgi_client, offer, succeeded
from tests.gateway.test_identity import make_user, with_key
from tests.gateway.test_sockets import Socket
from tests.gateway.test_stream import A100, H100, live, repriced

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def rule(
    alert_id: int, direction: str, price: float, *, per_gpu: bool = False, gpus: frozenset[str] = frozenset()
) -> Rule:
    return Rule(alert_id, 1, OfferFilters(gpu_types=gpus), direction, price, per_gpu)  # type: ignore[arg-type]


def fired(book: RuleBook, subject: Offer, old: str, new: str) -> list[int]:
    moved = repriced(subject, new)
    return sorted(r.alert_id for r in book.crossed(moved, Decimal(old), Decimal(new), Vocabulary()))


def test_rules_fire_when_the_price_crosses_their_threshold_only() -> None:
    book = RuleBook([rule(1, "below", 1.5), rule(2, "below", 1.9), rule(3, "above", 2.5), rule(4, "below", 1.0)])
    assert fired(book, H100, "2.00", "1.50") == [2]  # 1.5 is not below 1.5
    assert fired(book, H100, "2.00", "1.40") == [1, 2]
    assert fired(book, H100, "1.40", "1.30") == []  # already below: no news
    assert fired(book, H100, "1.40", "2.00") == []  # back up: "below" rules wait for the next drop
    assert fired(book, H100, "2.00", "3.00") == [3]
    assert fired(book, H100, "2.60", "3.00") == []  # already above
    assert fired(book, H100, "2.50", "2.51") == [3]  # at the threshold is not above it yet


def test_rules_judge_the_offer_by_their_filters_and_per_gpu_prices() -> None:
    book = RuleBook([rule(1, "below", 1.0, per_gpu=True), rule(2, "below", 1.0, gpus=frozenset({"A100"}))])
    eight = offer("vastai", "8", "H100", "10.00", count=8)
    assert fired(book, eight, "10.00", "7.20") == [1]  # 0.90 per GPU-hour
    assert fired(book, H100, "1.50", "0.90") == [1]  # one GPU: per GPU is per instance
    assert fired(book, A100, "1.50", "0.90") == [1, 2]


async def price_update(runtime: GatewayRuntime, publish: Any, before: Offer, price: str) -> Offer:
    """What a worker publishes when an offer's price moves: the offer, then the price update."""
    after = repriced(before, price)
    await publish([after])
    update = events.PriceUpdate(
        before.provider, before.id, before.gpu_type, before.region, before.price_per_hour, after.price_per_hour, NOW
    )
    await runtime.bus.publish(events.PRICE_UPDATES, before.id, update.encode())
    return after


async def deliveries(runtime: GatewayRuntime, count: int) -> list[events.WebhookDelivery]:
    found: list[events.WebhookDelivery] = []

    async def read() -> None:
        async for record in runtime.bus.subscribe([events.WEBHOOKS]):
            found.append(events.WebhookDelivery.decode(record.value or b""))
            if len(found) == count:
                return

    await asyncio.wait_for(read(), 5)
    return found


async def settle(runtime: GatewayRuntime) -> None:
    for _ in range(50):
        await asyncio.sleep(0.01)
    await asyncio.wait_for(runtime.notifier.ready.wait(), 5)


async def create(client: AsgiClient, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    status, _, content = await client.request("POST", path, json=body, headers=with_key(key))
    assert status == 201, content
    return orjson.loads(content)  # type: ignore[no-any-return]


async def test_a_rule_that_fires_reaches_its_owner_alone_and_their_webhooks_signed(
    runtime: GatewayRuntime, publish: Any
) -> None:
    await publish([H100, A100])
    await live(runtime)
    client = asgi_client(runtime)
    owner, owner_key = await make_user(Plan.ENTERPRISE)
    _, other_key = await make_user(Plan.ENTERPRISE)
    alert = await create(client, "/api/v2/alerts", {"filters": {"gpu": ["H100"]}, "price": "1.5"}, owner_key)
    hook = await create(client, "/api/v2/webhooks", {"url": "https://hooks.example.com/a"}, owner_key)
    await create(client, "/api/v2/alerts", {"filters": {"gpu": ["H100"]}, "price": "1.5"}, other_key)
    await settle(runtime)
    async with (
        Socket(runtime, headers=with_key(owner_key)) as mine,
        Socket(runtime, headers=with_key(other_key)) as theirs,
        Socket(runtime) as anonymous,
    ):
        for socket in (mine, theirs, anonymous):
            await socket.connected()
        for socket in (mine, theirs):
            assert (await socket.say({"type": "subscribe", "channels": ["alerts"]}))["type"] == "subscribed"
        refused = await anonymous.say({"type": "subscribe", "channels": ["alerts"]})
        assert refused["type"] == "error" and "sign in" in refused["message"]

        await price_update(runtime, publish, A100, "0.50")  # another GPU: no rule of H100 fires
        await price_update(runtime, publish, H100, "1.20")
        got = await mine.message()
        assert got["event"] == "alert" and got["data"]["alert_id"] == alert["id"]
        assert Decimal(got["data"]["new_price"]) == Decimal("1.2") and got["data"]["offer"]["id"] == H100.id
        assert "user_id" not in got["data"]
        other = await theirs.message()
        assert other["data"]["alert_id"] != alert["id"]  # their own rule, not the owner's
        with pytest.raises(TimeoutError):
            await mine.message(timeout_s=0.3)  # one alert each, nothing of anyone else's

    (delivery,) = await deliveries(runtime, 1)  # the other user has no webhook
    assert delivery.webhook_id == hook["id"] and delivery.user_id == owner.pk and delivery.event == "price.alert"
    assert delivery.url == "https://hooks.example.com/a"
    timestamp, mac = delivery.headers["X-GPUBROKER-Signature"].removeprefix("t=").split(",v1=")
    expected = hmac.new(hook["secret"].encode(), timestamp.encode() + b"." + delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    body = orjson.loads(delivery.body)
    assert (
        body["type"] == "price.alert" and body["id"] == delivery.delivery_id == delivery.headers["X-GPUBROKER-Delivery"]
    )
    assert body["data"]["alert_id"] == alert["id"] and body["data"]["offer"]["id"] == H100.id
    listed = orjson.loads((await client.get("/api/v2/alerts", headers=with_key(owner_key)))[2])
    assert listed[0]["last_triggered_at"] is not None
    realtime = orjson.loads((await client.get("/health"))[2])["realtime"]
    assert (realtime["alerts_fired"], realtime["webhook_deliveries"]) == (2, 1)  # both users' rules, one webhook


async def test_price_change_and_provider_health_webhooks(runtime: GatewayRuntime, publish: Any) -> None:
    await publish([H100], provider_events=[succeeded("vastai", offers=1)])
    await live(runtime)
    client = asgi_client(runtime)
    _, key = await make_user(Plan.ENTERPRISE)
    hook = {"url": "https://hooks.example.com/all", "events": ["price.change", "provider.health"]}
    created = await create(client, "/api/v2/webhooks", hook, key)
    await settle(runtime)
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", succeeded("vastai", offers=1).encode())  # baseline
    await price_update(runtime, publish, H100, "2.20")
    failed = events.ProviderEvent("vastai", "poll.failed", NOW, {"reason": "HTTP 503"})
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", failed.encode())
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", failed.encode())  # still degraded: no news
    await runtime.bus.publish(events.PROVIDER_EVENTS, "vastai", succeeded("vastai", offers=1).encode())
    found = await deliveries(runtime, 3)
    assert [d.event for d in found] == ["price.change", "provider.health", "provider.health"]
    assert all(d.webhook_id == created["id"] for d in found)
    change = orjson.loads(found[0].body)["data"]
    assert (change["offer_id"], Decimal(change["old_price"]), Decimal(change["new_price"])) == (
        H100.id,
        Decimal("2"),
        Decimal("2.2"),
    )
    health = [orjson.loads(d.body)["data"] for d in found[1:]]
    assert [(h["previous_status"], h["status"]) for h in health] == [("healthy", "degraded"), ("degraded", "healthy")]
    assert len({d.delivery_id for d in found}) == 3


async def test_market_alerts_reach_subscribers_of_their_gpu(runtime: GatewayRuntime, publish: Any) -> None:
    await publish([H100, A100])
    await live(runtime)
    async with Socket(runtime) as h100, Socket(runtime) as a100:
        for socket, gpu in ((h100, "H100"), (a100, "A100")):
            await socket.connected()
            await socket.say({"type": "subscribe", "channels": ["price_alerts", f"gpu:{gpu}"]})
        alert = events.PriceAlert(
            "anomaly", "vastai", H100.id, "H100", "us-east", Decimal("2.00"), Decimal("0.40"), NOW, {"zscore": -4.2}
        )
        await runtime.bus.publish(events.PRICE_ALERTS, H100.id, alert.encode())  # as the stream analytics do
        got = await h100.message()
        assert got["event"] == "price_alert" and got["data"]["kind"] == "anomaly"
        assert got["data"]["detail"] == {"zscore": -4.2} and got["data"]["offer"]["id"] == H100.id
        with pytest.raises(TimeoutError):
            await a100.message(timeout_s=0.3)


async def test_alerts_of_one_user_never_reach_another_through_the_stream_either(
    runtime: GatewayRuntime, publish: Any
) -> None:
    from tests.gateway.test_stream import EventStream

    await publish([H100])
    await live(runtime)
    owner, _ = await make_user(Plan.PRO)
    _, other_key = await make_user(Plan.PRO)
    async with EventStream(runtime, b"", with_key(other_key)) as stream:
        mine = events.PriceAlert("rule", "vastai", H100.id, "H100", "us-east", None, Decimal("1"), NOW, {}, owner.pk, 1)
        market = events.PriceAlert("significant_change", "vastai", H100.id, "H100", "us-east", None, Decimal("1"), NOW)
        await runtime.bus.publish(events.PRICE_ALERTS, H100.id, mine.encode())
        await runtime.bus.publish(events.PRICE_ALERTS, H100.id, market.encode())
        frame = await stream.next_event()
        assert frame["event"] == "price_alert" and orjson.loads(frame["data"])["kind"] == "significant_change"


async def test_the_notifier_takes_no_record_before_the_catalogue_has_caught_up(runtime: GatewayRuntime) -> None:
    """A rule judges an offer by the catalogue's copy: taken earlier, the records of offers the
    instance had not read yet would fire nothing."""
    caught_up = asyncio.Event()
    notifier = Notifier(runtime.bus, runtime.catalog, runtime.vault, caught_up=caught_up)
    running = asyncio.create_task(notifier.run())
    try:
        await asyncio.sleep(0.3)
        assert not notifier.ready.is_set()
        caught_up.set()
        await asyncio.wait_for(notifier.ready.wait(), 5)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
