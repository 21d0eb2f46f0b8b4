"""Identity on the real services: two gateway processes sharing Redis, PostgreSQL and OpenBao."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import hvac
import pytest

from tests.conftest import Services
from tests.integration.processes import BIN, gateway_process, get_json, post_json, production_env

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
LIMITS = {"free": 10, "pro": 100, "enterprise": 1000}
DRIVE_S = 10.0


@pytest.fixture
def env(services: Services, tmp_path: Path) -> dict[str, str]:
    return production_env(services, tmp_path)


@pytest.fixture
def gateways(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    with gateway_process(env) as first, gateway_process(env) as second:
        yield first, second


def api_key(env: dict[str, str], gateway: str, plan: str) -> str:
    """A new user of the plan (made by the operator's CLI) and an API key of theirs."""
    email = f"{plan}-{time.monotonic_ns()}@example.com"
    made = subprocess.run(
        [BIN / "gpubroker", "users", "create", email, "--plan", plan], input=PASSWORD + "\n", env=env, text=True
    )
    assert made.returncode == 0
    tokens = get_json(gateway + "/api/v2/auth/login", {"email": email, "password": PASSWORD})
    made_key = post_json(
        gateway + "/api/v2/auth/api-keys",
        {"name": "load"},
        {"Authorization": f"Bearer {tokens['access_token']}", "X-API-Key": ""},
    )
    return str(made_key["key"])


async def drive(urls: tuple[str, str], keys: dict[str, str]) -> dict[str, Counter[int]]:
    """Offer each identity more than its limit (twice, or 1.3 times the 1000/s plan's, which is
    what this machine's client can send), alternating between the two instances."""
    outcomes: dict[str, Counter[int]] = {plan: Counter() for plan in keys}
    retry_after: list[str] = []
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(plan: str, url: str) -> None:
            try:
                async with session.get(url + "/api/v2/gpus", headers={"X-API-Key": keys[plan]}) as answer:
                    await answer.read()
                    outcomes[plan][answer.status] += 1
                    if answer.status == 429:
                        retry_after.append(answer.headers.get("Retry-After", ""))
            except aiohttp.ClientError:
                outcomes[plan][0] += 1

        async def offer(plan: str) -> None:
            interval = 1 / (LIMITS[plan] * (1.3 if LIMITS[plan] >= 1000 else 2.0))
            started, sent, pending = time.monotonic(), 0, set()
            while (elapsed := time.monotonic() - started) < DRIVE_S:
                while sent < elapsed / interval:
                    task = asyncio.create_task(one(plan, urls[sent % 2]))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    sent += 1
                await asyncio.sleep(0.002)
            await asyncio.gather(*pending)

        await asyncio.gather(*(offer(plan) for plan in keys))
    assert retry_after and all(value.isdigit() and int(value) >= 1 for value in retry_after)
    return outcomes


def test_plans_get_their_rate_across_two_instances(env, gateways) -> None:  # type: ignore[no-untyped-def]
    keys = {plan: api_key(env, gateways[0], plan) for plan in LIMITS}
    outcomes = asyncio.run(drive(gateways, keys))
    for plan, limit in LIMITS.items():
        accepted = outcomes[plan][200] / DRIVE_S
        assert abs(accepted - limit) <= 0.1 * limit, (plan, accepted, dict(outcomes[plan]))
        assert outcomes[plan][429] > 0 and not outcomes[plan][0], (plan, dict(outcomes[plan]))


def test_tokens_from_one_instance_work_on_the_other_with_keys_in_vault(env, gateways, services) -> None:  # type: ignore[no-untyped-def]
    first, second = gateways
    key = api_key(env, first, "pro")
    service = post_json(second + "/api/v2/auth/service-token", {}, {"X-API-Key": key})
    as_agent = {"Authorization": f"Bearer {service['access_token']}", "X-API-Key": ""}  # the token alone
    ranking = get_json(first + "/api/v2/providers/ranking?limit=1", headers=as_agent)
    assert "criteria" in ranking
    stored = hvac.Client(url=services.vault_addr, token=services.vault_token).secrets.kv.v2.read_secret_version(
        path="gpubroker/auth/jwt-keys", mount_point="secret", raise_on_deleted_version=True
    )
    assert "BEGIN PRIVATE KEY" in stored["data"]["data"]["keys"]
