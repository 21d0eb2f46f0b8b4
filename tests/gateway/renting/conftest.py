"""A gateway that rents from emulated providers (Vast.ai and Lambda Cloud; Hyperstack and
TensorDock, which also scale), each a replay server with its stateful emulator, polled and rented
from by the embedded workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gpubroker.core.adapter import ProviderAdapter
from gpubroker.core.bus import Bus
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.emulator import Cloud, Dialect, Emulator
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.runtime import GatewayRuntime
from gpubroker_hyperstack.adapter import HyperstackAdapter
from gpubroker_hyperstack.emulator import HyperstackDialect
from gpubroker_lambdalabs.adapter import LambdaCloudAdapter
from gpubroker_lambdalabs.emulator import LambdaDialect
from gpubroker_tensordock.adapter import TensorDockAdapter
from gpubroker_tensordock.emulator import TensorDockDialect
from gpubroker_vastai.adapter import VastAdapter
from gpubroker_vastai.emulator import VastDialect
from tests.gateway.conftest import OPERATOR_KEY, GatewayClient, asgi_client
from tests.gateway.test_identity import make_user

PROVIDERS: dict[str, tuple[type[ProviderAdapter], type[Dialect]]] = {
    "vastai": (VastAdapter, VastDialect),
    "lambdalabs": (LambdaCloudAdapter, LambdaDialect),
}
SCALING: dict[str, tuple[type[ProviderAdapter], type[Dialect]]] = {
    "hyperstack": (HyperstackAdapter, HyperstackDialect),
    "tensordock": (TensorDockAdapter, TensorDockDialect),
}
KEYS = (
    "GPUBROKER_SECRET_LAMBDALABS_API_KEY",
    "GPUBROKER_SECRET_HYPERSTACK_API_KEY",
    "GPUBROKER_SECRET_TENSORDOCK_API_KEY",
)


@dataclass
class Clouds:
    servers: dict[str, ReplayServer]

    def cloud(self, provider: str) -> Cloud:
        emulator = self.servers[provider].emulator
        assert emulator is not None
        return emulator.cloud

    def live(self, provider: str) -> list[Any]:
        return self.cloud(provider).live()


def emulate(providers: dict[str, tuple[type[ProviderAdapter], type[Dialect]]]) -> Clouds:
    servers = {}
    for name, (adapter, dialect) in providers.items():
        assert adapter.recordings is not None
        cloud = Cloud(granularity_s=adapter.billing_granularity_s, boot_s=0.0)
        servers[name] = ReplayServer(adapter.recordings, emulator=Emulator(dialect(), cloud))
        servers[name].start()
    return Clouds(servers)


@pytest.fixture
def clouds() -> Iterator[Clouds]:
    emulated = emulate(PROVIDERS)
    yield emulated
    for server in emulated.servers.values():
        server.stop()


@pytest.fixture
def scaling_clouds() -> Iterator[Clouds]:
    emulated = emulate(SCALING)
    yield emulated
    for server in emulated.servers.values():
        server.stop()


def renting_settings(clouds: Clouds, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": "test-key",
        "index_refresh_s": 0,
        "admin_api_key": OPERATOR_KEY,
        "plugins": list(clouds.servers),
        "provider_base_urls": {name: server.url for name, server in clouds.servers.items()},
        "rental_wait_s": 5.0,
        "reconcile_interval_s": 3600.0,
    }
    return Settings(**(values | overrides))


async def renting_runtime(settings: Settings, bus: Bus) -> GatewayRuntime:
    runtime = GatewayRuntime(settings, run_workers=True, bus=bus)
    await runtime.start()
    for _ in range(400):  # the embedded workers' first polls
        if {o.provider for o in runtime.catalog.offers.values()} >= set(settings.plugins or ()):
            return runtime
        await asyncio.sleep(0.025)
    await runtime.stop()
    raise AssertionError("the emulated providers' offers did not arrive")


def with_keys(env: pytest.MonkeyPatch) -> None:
    """Made-up API keys for the emulated providers that need one."""
    for name in KEYS:
        env.setenv(name, "test-key")


@pytest.fixture
async def renting(clean_env: pytest.MonkeyPatch, clouds: Clouds) -> AsyncIterator[GatewayRuntime]:
    with_keys(clean_env)
    runtime = await renting_runtime(renting_settings(clouds), MemoryBus())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def scaling(clean_env: pytest.MonkeyPatch, scaling_clouds: Clouds) -> AsyncIterator[GatewayRuntime]:
    with_keys(clean_env)
    runtime = await renting_runtime(renting_settings(scaling_clouds), MemoryBus())
    yield runtime
    await runtime.stop()


async def user_client(runtime: GatewayRuntime, plan: Plan = Plan.PRO) -> tuple[GatewayClient, int]:
    user, key = await make_user(plan)
    return GatewayClient(asgi_client(runtime), {"x-api-key": key}), user.pk


def offer_of(runtime: GatewayRuntime, clouds: Clouds, provider: str) -> str:
    """The cheapest priced offer of ``provider``, which its emulator then bills at that price."""
    offers = [o for o in runtime.catalog.offers.values() if o.provider == provider and o.price_per_hour is not None]
    chosen = min(offers, key=lambda o: o.price_per_hour or 0)
    assert chosen.price_per_hour is not None
    clouds.cloud(provider).prices[chosen.provider_offer_id] = chosen.price_per_hour
    return chosen.id
