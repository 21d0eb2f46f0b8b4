"""The Kafka backend on the real broker (KRaft), with topics created by scripts/services."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.offer import offer_id
from tests.conftest import Services
from tests.core.test_offer import make

pytestmark = pytest.mark.integration


async def collect(bus: KafkaBus, topics: list[str], keys: set[str], want: int) -> list:  # type: ignore[type-arg]
    seen = []

    async def read() -> None:
        async for record in bus.subscribe(topics):
            if record.key in keys:
                seen.append(record)
                if len(seen) == want:
                    return

    await asyncio.wait_for(read(), timeout=60)
    return seen


async def test_published_records_arrive_in_order_per_key_with_tombstones(services: Services) -> None:
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    try:
        sku = f"bus-test-{uuid.uuid4()}"
        key = offer_id("acme", sku)
        first = make(id=key, provider_offer_id=sku)
        second = make(id=key, provider_offer_id=sku, price_per_hour=Decimal("1.5"))
        await bus.publish(events.OFFERS, key, events.encode_offer(first))
        await bus.publish(events.OFFERS, key, events.encode_offer(second))
        await bus.publish(events.OFFERS, key, None)
        await bus.flush()
        records = await collect(bus, [events.OFFERS], {key}, 3)
    finally:
        await bus.stop()
    assert [r.value for r in records] == [events.encode_offer(first), events.encode_offer(second), None]


async def test_topics_exist_with_their_configuration(services: Services) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        assert set(events.TOPICS) <= topics
        assert {events.dead_letter_topic(t) for t in events.TOPICS} <= topics
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, events.OFFERS)])
        configs = {name: value for name, value, *_ in response.resources[0][4]}
        assert configs["cleanup.policy"] == "compact"
    finally:
        await admin.close()


async def test_topics_are_never_created_by_accident(services: Services) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    try:
        with pytest.raises(TimeoutError):  # the producer waits for metadata that never comes
            await asyncio.wait_for(bus.publish("gpubroker.no-such-topic", "k", b"v"), timeout=3)
    finally:
        await bus.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    await admin.start()
    try:
        assert "gpubroker.no-such-topic" not in await admin.list_topics()
    finally:
        await admin.close()
