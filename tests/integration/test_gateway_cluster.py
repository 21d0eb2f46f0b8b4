"""Two gateway processes on the real Kafka, Redis and PostgreSQL: merging several providers,
warming from Redis, paging across instances while prices move, and Redis dying mid-test."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.offer import Offer
from gpubroker.core.plugins import load_providers
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.integration.processes import (
    gateway_process,
    get_json,
    production_env,
    run_worker,
    seed_credentials,
    services_cmd,
    wait_for,
)

pytestmark = pytest.mark.integration

PROVIDERS = ("vastai", "lambdalabs", "runpod")


@pytest.fixture
def env(services: Services, tmp_path: Path) -> dict[str, str]:
    return production_env(services, tmp_path)


@pytest.fixture
def replays(services: Services) -> Iterator[dict[str, ReplayServer]]:
    registry = load_providers(allow=list(PROVIDERS))
    with ExitStack() as stack:
        servers = {}
        for name in PROVIDERS:
            provider = registry.get(name)
            assert provider.adapter.recordings is not None
            seed_credentials(services, provider)
            servers[name] = stack.enter_context(ReplayServer(provider.adapter.recordings))
        yield servers


def listing(url: str, **params: str) -> dict:  # type: ignore[type-arg]
    return get_json(f"{url}/api/v2/providers?{urllib.parse.urlencode(params)}")  # type: ignore[no-any-return]


def all_ids(url: str) -> set[str]:
    ids, params = set(), {"limit": "500"}
    while True:
        page = listing(url, **params)
        ids |= {item["id"] for item in page["items"]}
        if not page["next_cursor"]:
            return ids
        params["cursor"] = page["next_cursor"]


async def reprice(services: Services, offers: list[Offer], factor: Decimal) -> None:
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    try:
        for offer in offers:
            price = (offer.price_per_hour or Decimal(1)) * factor
            changed = offer.model_copy(update={"price_per_hour": price.quantize(Decimal("0.000001"))})
            await bus.publish(events.OFFERS, offer.id, events.encode_offer(changed))
        await bus.flush()
    finally:
        await bus.stop()


def test_two_gateways_merge_share_and_page_exactly_once_while_prices_move(  # type: ignore[no-untyped-def]
    env, services, replays
) -> None:
    for name, replay in replays.items():
        result = run_worker(env, name, replay)
        assert result.returncode == 0, result.stderr

    with gateway_process(env) as first:

        def merged() -> bool:
            states = {p["name"]: p["status"] for p in get_json(first + "/health")["providers"]}
            return all(states.get(name) == "healthy" for name in PROVIDERS) and all(
                listing(first, provider=name)["total"] for name in PROVIDERS
            )

        wait_for(merged)
        body = listing(first, limit="500")
        assert len(all_ids(first)) == body["total"]  # merged, no duplicates
        prices = [item["price_per_hour"] for item in body["items"] if item["price_per_hour"] is not None]
        assert prices == sorted(prices)
        settled = wait_for(lambda: _stable_fingerprint(first))
        listing(first, sort="-price", limit="5")  # rendered and shared through Redis

        with gateway_process(env) as second:
            assert wait_for(lambda: _stable_fingerprint(second)) == settled  # the same records, the same catalogue
            assert wait_for(lambda: get_json(second + "/health")["cache"]["warmed"]) > 0

            everything = all_ids(first)
            seen: list[str] = []
            page = listing(first, limit="7")
            for turn in range(200):
                seen += [item["id"] for item in page["items"]]
                if not page["next_cursor"]:
                    break
                moved = [Offer.model_validate(item) for item in page["items"][:3]]
                asyncio.run(reprice(services, moved, Decimal("0.5") if turn % 2 else Decimal("3")))
                target = moved[0]
                for url in (first, second):  # both instances have taken the change
                    wait_for(
                        lambda url=url, target=target: (
                            get_json(f"{url}/api/v2/providers/{target.id}") != target.to_json()
                        )
                    )
                page = listing(second if turn % 2 == 0 else first, limit="7", cursor=page["next_cursor"])
            assert len(seen) == len(set(seen)) and set(seen) == everything


def _stable_fingerprint(url: str) -> str | None:
    """The catalogue's fingerprint once it stays the same for a second (the backlog is consumed)."""
    before = get_json(url + "/health")["catalog"]["fingerprint"]
    time.sleep(1)
    return before if get_json(url + "/health")["catalog"]["fingerprint"] == before else None


def test_requests_succeed_from_memory_while_redis_is_down(env, services, replays) -> None:  # type: ignore[no-untyped-def]
    assert run_worker(env, "vastai", replays["vastai"]).returncode == 0
    with gateway_process(env) as url:
        # a provider filter names only providers the catalogue knows (422 before it has read them)
        wait_for(lambda: "vastai" in {p["name"] for p in listing(url, limit="1")["providers"]})
        wait_for(lambda: listing(url, provider="vastai")["total"])
        before = listing(url, provider="vastai", sort="price")
        services_cmd("stop", "redis")
        try:
            assert listing(url, provider="vastai", sort="price") == before  # cached in this process
            fresh = listing(url, provider="vastai", sort="-price", limit="3")  # a miss: computed without Redis
            assert fresh["total"] == before["total"]
            assert get_json(url + "/health")["cache"]["redis"] is False
        finally:
            services_cmd("start", "redis")
