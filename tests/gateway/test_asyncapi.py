"""The AsyncAPI document describes what really travels: every event the gateway renders for its
subscribers, and every record the product writes to Kafka, validates against the payload schema
the document gives it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import orjson
import pytest

from gpubroker.core import events, rental_messages
from gpubroker.core.offer import Availability
from gpubroker.core.renting import Instance, InstanceState, Refusal, RefusalKind, RentalRequest
from gpubroker.gateway import docs
from gpubroker.gateway.realtime.hub import Event
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import offer
from tests.gateway.test_stream import live, repriced

pytestmark = pytest.mark.django_db(transaction=True)

AT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
H100 = offer("vastai", "h", "H100", "2.00")
USER = 7


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return orjson.loads(docs.asyncapi_document())  # type: ignore[no-any-return]


def payload_validator(document: dict[str, Any], message: str) -> jsonschema.Validator:
    payload = document["components"]["messages"][message]["payload"]
    return jsonschema.Draft202012Validator({**payload, "components": document["components"]})


def assert_valid(document: dict[str, Any], message: str, value: object) -> None:
    errors = sorted(payload_validator(document, message).iter_errors(value), key=str)
    assert not errors, f"{message}: {errors[0].message} at {list(errors[0].absolute_path)}"


def records() -> dict[str, tuple[str, bytes]]:
    """One record of every kind the product writes, as it writes it: topic and value."""
    update = events.PriceUpdate("vastai", H100.id, "H100", "us-east", Decimal("2"), Decimal("2.5"), AT, 1, "US")
    market_alert = events.PriceAlert(
        "significant_change", "vastai", H100.id, "H100", "us-east", Decimal("2"), Decimal("2.5"), AT, {"change_pct": 25}
    )
    window = events.PriceAggregate(
        "H100", "europe", AT, AT.replace(minute=31), 4, Decimal("1.9"), Decimal("2.1"), Decimal("2.4")
    )
    delivery = events.WebhookDelivery("d-1", 3, USER, "https://hooks.example.com/x", "price.alert", b"{}", {}, AT)
    request = RentalRequest("gpubroker-r-1", "h100-8x", 8, "us-east", "ubuntu-22.04", "ssh-ed25519 AAAA", {"a": "b"})
    rental_id = "6f1d2c9e-8b7a-4e5f-9a0b-1c2d3e4f5a6b"
    command = rental_messages.RentalCommand("c-1", "lambdalabs", "provision", rental_id, request)
    instance = Instance("i-1", InstanceState.RUNNING, "gpubroker-r-1", 8, Decimal("23.92"))
    result = rental_messages.RentalResult(
        "c-1", "lambdalabs", "provision", "ok", rental_id, instance, (instance,), None, "", AT.isoformat()
    )
    state = rental_messages.RentalEvent(
        rental_id, USER, "rental.terminated", "terminated", "lambdalabs", AT, {"cost": Decimal("47.84")}
    )
    action = rental_messages.AgentActionEvent("a-1", "x-1", "provision", "succeeded", USER, AT, "", {"rental": "r"})
    return {
        "RentalCommandRecord": (rental_messages.RENTAL_COMMANDS, command.encode()),
        "RentalResultRecord": (rental_messages.RENTAL_RESULTS, result.encode()),
        "RentalEventRecord": (rental_messages.RENTAL_EVENTS, state.encode()),
        "AgentActionRecord": (rental_messages.AGENT_ACTIONS, action.encode()),
        "OfferRecord": (events.OFFERS, events.encode_offer(H100)),
        "PriceUpdateRecord": (events.PRICE_UPDATES, update.encode()),
        "ProviderEventRecord": (events.PROVIDER_EVENTS, events.ProviderEvent("vastai", "poll.ok", AT).encode()),
        "PriceAlertRecord": (events.PRICE_ALERTS, market_alert.encode()),
        "PriceAggregateRecord": (events.PRICE_AGGREGATES, window.encode()),
        "WebhookDeliveryRecord": (events.WEBHOOKS, delivery.encode()),
        "accountNoticeRecord": (
            events.PRICE_ALERTS,
            events.AccountNotice(USER, "webhook.disabled", AT, {"webhook_id": 3}).encode(),
        ),
    }


def test_every_topic_is_a_channel_and_every_record_fits_its_message(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {*events.TOPICS, *rental_messages.TOPICS} <= addresses
    for message, (topic, value) in records().items():
        channel = next(c for c in document["channels"].values() if c["address"] == topic)
        assert message in channel["messages"], (topic, message)
        assert_valid(document, message, orjson.loads(value))
    refused = rental_messages.RentalResult(
        "c-2", "vastai", "provision", "refused", "r-1", refusal=Refusal(RefusalKind.INSUFFICIENT_BALANCE, "no")
    )
    assert_valid(document, "RentalResultRecord", orjson.loads(refused.encode()))


def test_rental_and_agent_pushes_are_their_records_without_the_tag_and_owner(document: dict[str, Any]) -> None:
    """What realtime feeds push for a rental or agent-action record (``rentals/feed.py``,
    ``agents/actions.py``): the record without ``schema`` (and a rental's ``user_id``), typed."""
    for message, (record, message_type, private) in {
        "rentalEvent": ("RentalEventRecord", "rental", {"user_id"}),
        "agentActionEvent": ("AgentActionRecord", "action", set()),
    }.items():
        data = orjson.loads(records()[record][1])
        pushed = {"type": message_type, **{k: v for k, v in data.items() if k not in {"schema", *private}}}
        assert_valid(document, message, pushed)


async def test_every_event_the_gateway_renders_fits_its_message(
    document: dict[str, Any],
    runtime: GatewayRuntime,
    publish,  # type: ignore[no-untyped-def]
) -> None:
    await live(runtime)
    everyone = runtime.hub.subscribe(lambda event: True)
    owner = runtime.hub.subscribe(lambda event: True, owner=USER)
    await publish([H100])
    await publish([repriced(H100, "2.50")], provider_events=[events.ProviderEvent("vastai", "poll.ok", AT)])
    await publish([repriced(H100, "2.50").model_copy(update={"availability_status": Availability.UNAVAILABLE})])
    rule = events.PriceAlert(
        "rule", "vastai", H100.id, "H100", "us-east", Decimal("2.5"), Decimal("2"), AT, {"price": "2.1"}, USER, 11
    )
    for topic, value in [
        (events.PRICE_ALERTS, records()["PriceAlertRecord"][1]),
        (events.PRICE_ALERTS, rule.encode()),
        (events.PRICE_ALERTS, records()["accountNoticeRecord"][1]),
        (events.PRICE_AGGREGATES, records()["PriceAggregateRecord"][1]),
    ]:
        await runtime.bus.publish(topic, "k", value)
    await runtime.bus.publish(events.OFFERS, H100.id, None)  # withdrawn
    await runtime.bus.flush()

    seen: dict[str, list[Event]] = {}
    deadline = asyncio.get_running_loop().time() + 5
    wanted = {"offer_added", "price_update", "availability", "offer_removed"}
    wanted |= {"health_status", "price_alert", "alert", "market"}
    while not wanted <= seen.keys() or len(seen.get("alert", ())) < 2:
        assert asyncio.get_running_loop().time() < deadline, f"events never rendered: {wanted - seen.keys()}"
        for subscription in (everyone, owner):
            try:
                batch, _ = await asyncio.wait_for(subscription.next_batch(), 0.2)
            except TimeoutError:
                continue
            for event in batch:
                if subscription is owner and event.owner is None:
                    continue  # seen by everyone's subscription already
                seen.setdefault(event.kind, []).append(event)
    for kind, rendered in seen.items():
        for event in rendered:
            data = orjson.loads(event.data)
            message = "accountNotice" if data.get("kind") == "webhook.disabled" else _event_message(document, kind)
            assert_valid(document, message, data)


def _event_message(document: dict[str, Any], kind: str) -> str:
    return next(
        name for name, message in document["components"]["messages"].items() if message.get("x-gpubroker-event") == kind
    )
