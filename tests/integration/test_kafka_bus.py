"""The Kafka backend on the real broker (KRaft), with topics created by scripts/services."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import COMMIT_EVERY_S, KafkaBus
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


async def test_a_group_splits_records_between_members_and_resumes_after_what_it_handled(services: Services) -> None:
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    group, run = f"test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    seen: dict[str, list[str]] = {"a": [], "b": []}

    async def member(name: str, until: asyncio.Event) -> None:
        async for record in bus.subscribe([events.PRICE_UPDATES], group=group):
            if record.key and record.key.startswith(run):
                seen[name].append(record.key)
            if until.is_set():
                return

    async def publish(prefix: str, count: int) -> list[str]:
        keys = [f"{run}-{prefix}-{i}" for i in range(count)]
        for key in keys:
            update = events.PriceUpdate(f"test-{run}", key, None, "us", Decimal(1), Decimal(2), events.utcnow())
            await bus.publish(events.PRICE_UPDATES, key, update.encode())
        await bus.flush()
        return keys

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    members = [asyncio.create_task(member("a", stop_a)), asyncio.create_task(member("b", stop_b))]
    try:
        for _ in range(60):  # until both have joined and been given partitions
            await publish("warm", 12)
            await asyncio.sleep(1)
            if seen["a"] and seen["b"]:
                break
        for name in seen:
            seen[name].clear()
        batch = await publish("split", 60)

        def split(name: str) -> set[str]:  # a warm-up record may still arrive late
            return {key for key in seen[name] if "-split-" in key}

        for _ in range(60):
            if len(split("a") | split("b")) >= 60:
                break
            await asyncio.sleep(0.5)
        # Both members take part and nothing is lost (a rebalance may hand a record to both:
        # at least once, not exactly once).
        assert split("a") and split("b"), seen
        assert split("a") | split("b") == set(batch)

        await asyncio.sleep(3 * COMMIT_EVERY_S)  # idle: both have committed what they handled
        stop_a.set(), stop_b.set()
        await publish("nudge", 12)  # wakes both so they return (committing what they handled)
        await asyncio.wait_for(asyncio.gather(*members), 60)
        for name in seen:
            seen[name].clear()
        later = await publish("later", 20)
        stop_a.clear()
        resumed = asyncio.create_task(member("a", stop_a))
        members.append(resumed)
        for _ in range(120):
            if len([k for k in seen["a"] if "-later-" in k]) >= 20:
                break
            await asyncio.sleep(0.5)
        resumed.cancel()
        again = [k for k in seen["a"] if "-split-" in k]
        assert not again, f"handled and committed before, yet seen again: {again}"
        assert set(later) <= set(seen["a"])  # published while nobody was reading: not lost
    finally:
        for task in members:
            task.cancel()
        await asyncio.wait(members, timeout=30)
        await bus.stop()


async def test_a_subscriber_is_told_when_it_has_everything_that_was_on_the_topics(services: Services) -> None:
    """What a gateway waits for before it reports ready: a pause in the records is no sign (the
    consumer may take a moment to start), positions at the topics' ends are."""
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    provider = f"caught-up-{uuid.uuid4().hex[:8]}"
    try:
        for number in range(20):
            event = events.ProviderEvent(provider, "poll.failed", events.utcnow(), {"reason": str(number)})
            await bus.publish(events.PROVIDER_EVENTS, provider, event.encode())
        await bus.flush()
        caught_up, seen = asyncio.Event(), []

        async def read() -> None:
            async for record in bus.subscribe([events.PROVIDER_EVENTS], caught_up=caught_up):
                if record.key == provider:
                    seen.append(record)

        reading = asyncio.create_task(read())
        try:
            await asyncio.wait_for(caught_up.wait(), timeout=60)
            assert len(seen) == 20
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
    finally:
        await bus.stop()


async def test_a_group_keeps_where_it_started_before_it_handles_anything(services: Services) -> None:
    """A group's first member starts at the topic's end; a record written after that, while no
    member happens to be reading (between two members, during a rebalance), is still read by the
    next one rather than skipped as older than that member's own start."""
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    group, key = f"test-{uuid.uuid4().hex[:8]}", f"held-{uuid.uuid4().hex[:8]}"

    async def first(caught_up: asyncio.Event) -> None:
        async for _ in bus.subscribe([events.PROVIDER_EVENTS], group=group, caught_up=caught_up):
            pass

    async def second() -> None:
        async for record in bus.subscribe([events.PROVIDER_EVENTS], group=group):
            if record.key == key:
                return

    try:
        caught_up = asyncio.Event()
        reading = asyncio.create_task(first(caught_up))
        await asyncio.wait_for(caught_up.wait(), timeout=60)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        event = events.ProviderEvent(key, "poll.failed", events.utcnow(), {"reason": "between members"})
        await bus.publish(events.PROVIDER_EVENTS, key, event.encode())
        await bus.flush()
        await asyncio.wait_for(second(), timeout=60)
    finally:
        await bus.stop()
