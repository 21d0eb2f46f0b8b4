"""``/api/v2/agents``: register an agent, discover what it may do, and act (SRS B.3).

Every route takes an agent's service token only (``POST /api/v2/auth/service-token`` with one of
the user's API keys; Pro plan and above): the agent is the one registered with that key.
Actions are asynchronous: ``POST /actions`` answers 202 with the action, whose status moves
``pending`` -> ``running`` -> ``succeeded`` or ``failed`` (``GET /actions/{id}``, the agent's
WebSocket ``/ws/agents/{id}/`` and ``gpubroker.agents.actions``); an action beyond the agent's
budget or scope is a 403 naming why, recorded as ``refused``, and nothing is asked of any
provider.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from gpubroker.core.renting import RentalAction
from gpubroker.gateway import db
from gpubroker.gateway.agents.actions import ACTION_TYPES, Refused, action_json
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity.access import Requires, caller_identity
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import Agent, AgentAction
from gpubroker.gateway.rentals.requests import Money
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["agents"], auth=Requires(Permission.RENTALS, agents_only=True))
Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=50)]


class AgentBody(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    budget_per_hour: Money = Field(description="USD per hour its running rentals may cost together.")
    budget_total: Money = Field(description="USD its rentals may cost in all.")
    allowed_providers: Names = Field(default_factory=list, description="Empty: every provider that rents.")
    allowed_gpu_types: Names = Field(default_factory=list, description="Empty: every GPU type.")


class AgentOut(Schema):
    id: uuid.UUID
    name: str
    budget_per_hour: Decimal
    budget_total: Decimal
    allowed_providers: list[str]
    allowed_gpu_types: list[str]
    created_at: datetime


class ActionBody(Schema):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description=f"One of {', '.join(ACTION_TYPES)}.")
    params: dict[str, Any] = Field(default_factory=dict)


class ActionOut(Schema):
    id: uuid.UUID
    agent_id: uuid.UUID
    type: str
    params: dict[str, Any]
    status: str = Field(description="pending, running, succeeded, failed or refused.")
    reason: str | None
    result: dict[str, Any] | None
    rental_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


RESPONSES: dict[int, Any] = {401: Error, 403: Error, 404: Error, 409: Error, 422: Error}


@router.post("/register", response={200: AgentOut, 201: AgentOut, **RESPONSES}, summary="Register this agent")
async def register_agent(request: HttpRequest, body: AgentBody) -> Status[dict[str, Any]]:
    """Register the calling service token's key as an agent with its budgets and scope (201), or
    update them (200). Every action is checked against them before any provider is called."""
    identity = caller_identity(request)
    fields = body.model_dump()
    updated = await Agent.objects.filter(key_id=identity.key_id, active=True).aupdate(**fields)
    if updated:
        return Status(200, _json(await Agent.objects.aget(key_id=identity.key_id, active=True)))
    agent = await Agent.objects.acreate(user_id=identity.user_id, key_id=identity.key_id, **fields)
    return Status(201, _json(agent))


@router.get("/capabilities", response={200: dict[str, Any], **RESPONSES}, summary="What this agent may do")
async def get_capabilities(request: HttpRequest) -> dict[str, Any]:
    """What this agent may do: its registration (budgets and scope), the actions it may ask for,
    and the providers in its scope that rent, with the actions and billing granularity of each."""
    agent = await _agent(request)
    providers = current().rentals.providers
    return {
        "agent": _json(agent),
        "actions": list(ACTION_TYPES),
        "providers": [
            {
                "name": name,
                "display_name": provider.info.display_name,
                "actions": sorted(action.value for action in provider.adapter.renting),
                "scale": RentalAction.SCALE in provider.adapter.renting,
                "billing_granularity_s": provider.adapter.billing_granularity_s,
            }
            for name, provider in sorted(providers.items())
            if not agent.allowed_providers or name in agent.allowed_providers
        ],
        "websocket": f"/ws/agents/{agent.pk}/",
    }


@router.post("/actions", response={202: ActionOut, **RESPONSES}, summary="Ask for an action (asynchronous)")
async def request_action(request: HttpRequest, body: ActionBody) -> Status[dict[str, Any]]:
    """Ask for an action (query, decide, provision, scale, terminate); it runs asynchronously:
    follow it with GET /agents/actions/{action_id} or on /ws/agents/{agent_id}/. An action beyond
    the budget or scope is refused with the reason before any provider is called."""
    agent = await _agent(request)
    try:
        action = await current().agent_actions.submit(agent, body.type, body.params)
    except Refused as refused:
        raise ApiError(403, None, f"refused: {refused}") from None
    return Status(202, action_json(action))


@router.get("/actions/{action_id}", response={200: ActionOut, **RESPONSES}, summary="An action's status and result")
async def get_action(request: HttpRequest, action_id: uuid.UUID) -> dict[str, Any]:
    """An action's status and, once done, its result or why it was refused or failed."""
    agent = await _agent(request)
    action = await AgentAction.objects.filter(pk=action_id, agent=agent).afirst()
    if action is None:
        raise ApiError(404, "action_id", f"this agent has no action {action_id}")
    return action_json(action)


async def agent_of(key_id: int | None) -> Agent | None:
    """The active agent registered with this API key (a WebSocket asks outside a request, so
    through ``gateway.db``)."""
    if key_id is None:
        return None
    return await db.run(lambda: Agent.objects.filter(key_id=key_id, active=True).first())


async def _agent(request: HttpRequest) -> Agent:
    agent = await agent_of(caller_identity(request).key_id)
    if agent is None:
        raise ApiError(409, None, "register this agent first: POST /api/v2/agents/register")
    return agent


def _json(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.pk,
        "name": agent.name,
        "budget_per_hour": agent.budget_per_hour,
        "budget_total": agent.budget_total,
        "allowed_providers": agent.allowed_providers,
        "allowed_gpu_types": agent.allowed_gpu_types,
        "created_at": agent.created_at,
    }
