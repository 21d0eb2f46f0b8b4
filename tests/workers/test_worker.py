import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gpubroker.core import events
from gpubroker.core.bus import Record
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.secrets import EnvSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import Faults, ReplayServer
from gpubroker.workers.worker import ProviderWorker
from tests.workers.conftest import FAST_RETRY
from tests.workers.pager import PagerAdapter

PAGER = RegisteredProvider(PagerAdapter, "pager", "test")
SECRETS = EnvSecretStore({"GPUBROKER_SECRET_PAGER_TOKEN": "tok-98765"})


def settings(base_url: str, **overrides: object) -> Settings:
    return Settings(provider_base_urls={"pager": base_url}, **overrides)  # type: ignore[arg-type]


async def drain(bus: MemoryBus, *topics: str) -> list[Record]:
    """Everything retained on ``topics`` (the bus keeps them for late subscribers)."""
    seen = []
    stream = bus.subscribe(topics)
    while True:
        try:
            seen.append(await asyncio.wait_for(anext(stream), 0.05))
        except TimeoutError:
            await stream.aclose()
            return seen


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


async def test_first_poll_publishes_every_offer_and_an_event(clean_env, bus, pager_server: ReplayServer) -> None:  # type: ignore[no-untyped-def]
    async with ProviderWorker(
        PAGER, bus=bus, secrets=SECRETS, settings=settings(pager_server.url), retry=FAST_RETRY
    ) as worker:
        outcome = await worker.poll_once()
    assert outcome.ok and outcome.source == "live"
    offers = await drain(bus, events.OFFERS)
    assert len(offers) == 3
    assert {events.decode_offer(r.value).provider_offer_id for r in offers} == {"h100-1", "a100-8", "4090-1"}
    [event] = [events.ProviderEvent.decode(r.value) for r in await drain(bus, events.PROVIDER_EVENTS)]
    assert event.event_type == "poll.succeeded"
    assert event.data["offers"] == 3 and event.data["source"] == "live"


async def test_only_changes_are_published_after_the_first_poll(clean_env, bus, pager_server: ReplayServer) -> None:  # type: ignore[no-untyped-def]
    async with ProviderWorker(
        PAGER, bus=bus, secrets=SECRETS, settings=settings(pager_server.url), retry=FAST_RETRY
    ) as worker:
        await worker.poll_once()
        unchanged = await worker.poll_once()
        pager_server.scenario = "price_moved"
        moved = await worker.poll_once()
        pager_server.scenario = "one_removed"
        removed = await worker.poll_once()
    assert unchanged.changes is not None and not unchanged.changes
    assert moved.changes is not None and len(moved.changes.upserts) == 1
    [update] = [events.PriceUpdate.decode(r.value) for r in await drain(bus, events.PRICE_UPDATES)]
    assert (update.old_price, update.new_price) == (Decimal("0.39"), Decimal("0.35"))
    assert removed.changes is not None and [o.provider_offer_id for o in removed.changes.removed] == ["a100-8"]
    tombstones = [r for r in await drain(bus, events.OFFERS) if r.value is None]
    assert len(tombstones) == 1


async def test_a_garbage_answer_keeps_the_last_good_data(clean_env, bus, pager_server: ReplayServer, caplog) -> None:  # type: ignore[no-untyped-def]
    async with ProviderWorker(
        PAGER, bus=bus, secrets=SECRETS, settings=settings(pager_server.url), retry=FAST_RETRY
    ) as worker:
        await worker.poll_once()
        pager_server.faults = Faults(malformed=True)
        outcome = await worker.poll_once()
    assert not outcome.ok and not worker.healthy
    assert "malformed JSON" in caplog.text and "keeping the last published data" in caplog.text
    offers = await drain(bus, events.OFFERS)
    assert len(offers) == 3 and all(r.value is not None for r in offers)
    last = events.ProviderEvent.decode((await drain(bus, events.PROVIDER_EVENTS))[-1].value)
    assert last.event_type == "poll.failed" and last.data["error_type"] == "ProviderBadResponse"


async def test_unreachable_provider_serves_the_labelled_snapshot_when_embedded(clean_env, bus) -> None:  # type: ignore[no-untyped-def]
    async with ProviderWorker(
        PAGER, bus=bus, secrets=SECRETS, settings=settings("http://127.0.0.1:1"), retry=FAST_RETRY
    ) as worker:
        outcome = await worker.poll_once()
    assert outcome.ok and outcome.source == "snapshot"
    offers = [events.decode_offer(r.value) for r in await drain(bus, events.OFFERS)]
    captured = datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert offers and all(o.source == "snapshot" and o.last_updated == captured for o in offers)
    event = events.ProviderEvent.decode((await drain(bus, events.PROVIDER_EVENTS))[-1].value)
    assert event.data["source"] == "snapshot" and event.data["data_as_of"] == captured.isoformat()


async def test_snapshot_is_never_served_when_switched_off(clean_env, bus) -> None:  # type: ignore[no-untyped-def]
    config = settings("http://127.0.0.1:1", snapshot_fallback=False)
    async with ProviderWorker(PAGER, bus=bus, secrets=SECRETS, settings=config, retry=FAST_RETRY) as worker:
        outcome = await worker.poll_once()
    assert not outcome.ok and await drain(bus, events.OFFERS) == []


async def test_credentials_are_sent_but_never_logged_or_published(
    clean_env, bus, pager_server: ReplayServer, caplog
) -> None:  # type: ignore[no-untyped-def]
    class TokenPager(PagerAdapter):
        def authorize(self, call, credentials):  # type: ignore[no-untyped-def]
            from dataclasses import replace

            return replace(call, headers={"X-Token": credentials["token"]})

    provider = RegisteredProvider(TokenPager, "pager", "test")
    pager_server.faults = Faults(status=500)
    async with ProviderWorker(
        provider, bus=bus, secrets=SECRETS, settings=settings(pager_server.url), retry=FAST_RETRY
    ) as worker:
        await worker.poll_once()
        pager_server.reset()
        await worker.poll_once()
    assert pager_server.requests[0].headers["X-Token"] == "tok-98765"
    published = b"".join(r.value or b"" for r in await drain(bus, events.OFFERS, events.PROVIDER_EVENTS))
    assert b"tok-98765" not in published
    assert "tok-98765" not in caplog.text


async def test_an_implausible_price_is_published_quarantined_and_reported(
    clean_env, bus, pager_server: ReplayServer
) -> None:  # type: ignore[no-untyped-def]
    async with ProviderWorker(
        PAGER, bus=bus, secrets=SECRETS, settings=settings(pager_server.url), retry=FAST_RETRY
    ) as worker:
        await worker.poll_once()
        pager_server.scenario = "price_in_cents"  # the RTX 4090's $0.39 read as 39 dollars
        outcome = await worker.poll_once()
    assert outcome.ok
    latest = {r.key: r for r in await drain(bus, events.OFFERS)}
    published = {o.provider_offer_id: o for o in (events.decode_offer(r.value) for r in latest.values() if r.value)}
    assert "above the plausible" in (published["4090-1"].quarantined or "")
    assert published["h100-1"].quarantined is None and published["a100-8"].quarantined is None
    assert await drain(bus, events.PRICE_UPDATES) == []  # no alert fires on a unit mistake
    reported = [events.ProviderEvent.decode(r.value) for r in await drain(bus, events.PROVIDER_EVENTS)]
    [held] = [e for e in reported if e.event_type == "prices.quarantined"]
    assert held.data["count"] == 1 and held.data["offers"][0]["provider_offer_id"] == "4090-1"
    assert held.data["offers"][0]["price_per_hour"] == "39"
    assert [e.data["quarantined"] for e in reported if e.event_type == "poll.succeeded"] == [0, 1]


async def test_an_operator_sets_a_providers_poll_interval(clean_env, bus, pager_server: ReplayServer) -> None:  # type: ignore[no-untyped-def]
    """``GPUBROKER_POLL_INTERVALS`` replaces the plugin's interval, in the loop and in what the
    worker reports; other providers keep their own."""
    configured = settings(pager_server.url, poll_intervals={"pager": 7, "other": 30})
    async with ProviderWorker(PAGER, bus=bus, secrets=SECRETS, settings=configured, retry=FAST_RETRY) as worker:
        assert worker.info.poll_interval_s == 7 != PAGER.info.poll_interval_s
        await worker.poll_once()
    [event] = [events.ProviderEvent.decode(r.value) for r in await drain(bus, events.PROVIDER_EVENTS)]
    assert event.data["poll_interval_s"] == 7


def test_a_poll_interval_that_is_not_positive_is_refused(clean_env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(poll_intervals={"pager": 0})
