"""Embedded mode's own user: a caller without credentials on this machine uses every feature,
unless plans are enforced; anyone else, or anyone with credentials, is who they are."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.settings import Settings
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import asgi_client
from tests.gateway.test_identity import make_user, with_key

pytestmark = pytest.mark.django_db(transaction=True)
PRO_QUERY = b"sort=topsis&min_gpus=8"


@pytest.fixture
async def open_runtime(clean_env: pytest.MonkeyPatch) -> AsyncIterator[GatewayRuntime]:
    """An embedded gateway as `gpubroker up` runs it: plans not enforced."""
    runtime = GatewayRuntime(Settings(secret_key="test-key", index_refresh_s=0), bus=MemoryBus())
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_the_machines_own_user_may_do_everything_unlimited(open_runtime: GatewayRuntime) -> None:
    local = asgi_client(open_runtime)
    status, headers, _ = await local.get("/api/v2/providers", PRO_QUERY)
    assert status == 200
    assert b"x-ratelimit-limit" not in headers
    decide = await local.request("POST", "/api/v2/providers/decide", json={"gpu": ["H100"], "min_gpus": 8})
    assert decide[0] == 200
    made = await local.request("POST", "/api/v2/alerts", json={"filters": {"gpu": ["H100"]}, "price": "2"})
    assert made[0] == 201, made[2]
    status, _, body = await local.get("/api/v2/alerts")
    assert status == 200 and len(orjson.loads(body)) == 1  # the same local account each time
    over_ipv6 = asgi_client(open_runtime, client="::1")
    assert (await over_ipv6.get("/api/v2/alerts"))[0] == 200


async def test_others_and_credentials_still_meet_the_plans(open_runtime: GatewayRuntime) -> None:
    remote = asgi_client(open_runtime, client="192.0.2.7")
    status, _, body = await remote.get("/api/v2/providers", PRO_QUERY)
    assert status == 401 and b"pro plan" in body
    proxied = [(b"x-forwarded-for", b"192.0.2.7")]
    assert (await asgi_client(open_runtime).get("/api/v2/providers", PRO_QUERY, headers=proxied))[0] == 401
    _, key = await make_user(Plan.FREE)
    status, _, body = await asgi_client(open_runtime).get("/api/v2/providers", PRO_QUERY, headers=with_key(key))
    assert status == 403 and b"you have free" in body
    internal = await asgi_client(open_runtime).request("POST", "/internal/v1/auth/validate-token", json={"token": "x"})
    assert internal[0] == 403  # never a platform service


async def test_enforced_plans_make_the_local_caller_anonymous(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GPUBROKER_ENFORCE_PLANS", "true")
    runtime = GatewayRuntime(Settings(secret_key="test-key", index_refresh_s=0), bus=MemoryBus())
    await runtime.start()
    try:
        refused = await asgi_client(runtime).get("/api/v2/providers", PRO_QUERY)
        basic = await asgi_client(runtime).get("/api/v2/providers", b"gpu=H100")
    finally:
        await runtime.stop()
    assert refused[0] == 401
    assert basic[0] == 200 and basic[1][b"x-ratelimit-limit"] == b"10"
