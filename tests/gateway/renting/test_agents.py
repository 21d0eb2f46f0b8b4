"""Journey A.4 for an agent, on two emulated providers that scale (Hyperstack, TensorDock):
service token, register, capabilities, query, decide, provision, monitor (WebSocket), scale,
terminate with the final cost; and refusals before any provider is called."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import AgentAction
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient, asgi_client
from tests.gateway.renting.conftest import Clouds, offer_of
from tests.gateway.test_identity import make_user
from tests.gateway.test_sockets import Socket

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = {"budget_per_hour": "100", "budget_total": "1000"}


async def agent_client(runtime: GatewayRuntime, plan: Plan = Plan.PRO) -> tuple[GatewayClient, str]:
    """An agent's client (its service token, made from one of the user's API keys)."""
    _, key = await make_user(plan)
    made = await GatewayClient(asgi_client(runtime), {"x-api-key": key}).post("/api/v2/auth/service-token")
    assert made.status_code == 200, made.content
    token = made.json()["access_token"]
    return GatewayClient(asgi_client(runtime), {"authorization": f"Bearer {token}"}), token


async def finished(client: GatewayClient, action_id: str) -> dict[str, Any]:
    for _ in range(250):
        action = (await client.get(f"/api/v2/agents/actions/{action_id}")).json()
        if action["status"] in ("succeeded", "failed", "refused"):
            return action  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"action {action_id} did not finish")


async def act(client: GatewayClient, kind: str, **params: Any) -> dict[str, Any]:
    answer = await client.post("/api/v2/agents/actions", {"type": kind, "params": params})
    assert answer.status_code == 202, answer.content
    return await finished(client, answer.json()["id"])


@pytest.mark.parametrize("provider", ["hyperstack", "tensordock"])
async def test_an_agent_procures_monitors_scales_and_ends_a_gpu(
    scaling: GatewayRuntime, scaling_clouds: Clouds, provider: str
) -> None:
    agent, token = await agent_client(scaling)
    registered = await agent.post(
        "/api/v2/agents/register", {"name": "trainer", **BUDGET, "allowed_providers": [provider]}
    )
    assert registered.status_code == 201, registered.content
    agent_id = registered.json()["id"]
    capabilities = (await agent.get("/api/v2/agents/capabilities")).json()
    assert [p["name"] for p in capabilities["providers"]] == [provider] and capabilities["providers"][0]["scale"]

    queried = await act(agent, "query", max_price=1000)
    assert queried["status"] == "succeeded" and queried["result"]["items"]
    assert {item["provider"] for item in queried["result"]["items"]} == {provider}, "queries stay in scope"
    decided = await act(agent, "decide")
    assert decided["status"] == "succeeded"

    offer_id = offer_of(scaling, scaling_clouds, provider)
    socket_headers = [(b"authorization", f"Bearer {token}".encode())]
    async with Socket(scaling, f"/ws/agents/{agent_id}/", socket_headers) as socket:
        assert (await socket.message())["type"] == "websocket.accept"
        assert (await socket.message())["type"] == "connection_established"
        provisioned = await act(agent, "provision", offer_id=offer_id)
        assert provisioned["status"] == "succeeded", provisioned
        statuses = [(await socket.message())["data"]["status"] for _ in range(3)]
        assert statuses == ["pending", "running", "succeeded"]
    rental = provisioned["result"]["rental"]
    assert rental["state"] == "running" and rental["agent_id"] == agent_id

    scaled = await act(agent, "scale", rental_id=rental["id"], gpu_count=rental["gpu_count"] * 2)
    assert scaled["status"] == "succeeded", scaled["reason"]
    assert scaled["result"]["rental"]["gpu_count"] == rental["gpu_count"] * 2
    assert [i.gpu_count for i in scaling_clouds.live(provider)] == [rental["gpu_count"] * 2]

    ended = await act(agent, "terminate", rental_id=rental["id"])
    assert ended["status"] == "succeeded" and ended["result"]["rental"]["state"] == "terminated"
    assert ended["result"]["rental"]["final_cost"] is not None
    assert scaling_clouds.live(provider) == []


async def test_an_agent_beyond_its_budget_or_scope_is_refused_before_any_provider_call(
    scaling: GatewayRuntime, scaling_clouds: Clouds
) -> None:
    agent, _ = await agent_client(scaling)
    tight = {"budget_per_hour": "0.000001", "budget_total": "1000", "allowed_providers": ["hyperstack"]}
    assert (await agent.post("/api/v2/agents/register", {"name": "frugal", **tight})).status_code == 201
    requests_before = {name: len(server.requests) for name, server in scaling_clouds.servers.items()}
    over = await agent.post(
        "/api/v2/agents/actions",
        {"type": "provision", "params": {"offer_id": offer_of(scaling, scaling_clouds, "hyperstack")}},
    )
    assert over.status_code == 403 and "over budget" in over.json()["detail"][0]["message"]
    outside = await agent.post(
        "/api/v2/agents/actions",
        {"type": "provision", "params": {"offer_id": offer_of(scaling, scaling_clouds, "tensordock")}},
    )
    assert outside.status_code == 403 and "outside the agent's scope" in outside.json()["detail"][0]["message"]
    await asyncio.sleep(0.2)
    assert {name: len(server.requests) for name, server in scaling_clouds.servers.items()} == requests_before
    assert [a.status async for a in AgentAction.objects.all()] == ["refused", "refused"]
    for cloud in scaling_clouds.servers:
        assert scaling_clouds.cloud(cloud).instances() == []


async def test_agent_routes_take_an_agents_service_token_only(scaling: GatewayRuntime) -> None:
    _, key = await make_user(Plan.PRO)
    user = GatewayClient(asgi_client(scaling), {"x-api-key": key})
    refused = await user.post("/api/v2/agents/register", {"name": "x", **BUDGET})
    assert refused.status_code == 403 and "service token" in refused.json()["detail"][0]["message"]
    free, _ = await agent_client(scaling, Plan.FREE)
    assert (await free.post("/api/v2/agents/register", {"name": "x", **BUDGET})).status_code == 403
    unregistered, _ = await agent_client(scaling)
    assert (await unregistered.get("/api/v2/agents/capabilities")).status_code == 409
    agent, _ = await agent_client(scaling)
    await agent.post("/api/v2/agents/register", {"name": "x", **BUDGET})
    bad = await agent.post("/api/v2/agents/actions", {"type": "dance"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "type"
    wrong = await agent.post("/api/v2/agents/actions", {"type": "scale", "params": {"rental_id": "nope"}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "params.rental_id"


async def test_another_agents_websocket_is_closed(scaling: GatewayRuntime) -> None:
    agent, token = await agent_client(scaling)
    await agent.post("/api/v2/agents/register", {"name": "x", **BUDGET})
    other, _ = await agent_client(scaling)
    other_id = (await other.post("/api/v2/agents/register", {"name": "y", **BUDGET})).json()["id"]
    async with Socket(scaling, f"/ws/agents/{other_id}/", [(b"authorization", f"Bearer {token}".encode())]) as socket:
        closed = await socket.message()
        assert closed["type"] == "websocket.close" and closed["code"] == 4404
    assert orjson.dumps(closed)
