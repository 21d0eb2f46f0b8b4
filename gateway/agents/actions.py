"""Agents' actions: checked against the agent's budgets and scope when asked for (a refusal names
its reason and reaches no provider), then carried out in the background.

``query`` and ``decide`` answer from the catalogue, narrowed to the agent's providers and GPU
types; ``provision``, ``scale`` and ``terminate`` go through the rental service like a user's
requests, the rentals carrying the agent's id. Each change of an action's status is a record on
``gpubroker.agents.actions`` and reaches the agent's WebSocket (``/ws/agents/<id>/``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import numpy as np
import orjson
from django.utils import timezone
from pydantic import Field, ValidationError

from gpubroker.core.bus import Bus
from gpubroker.core.rental_messages import AGENT_ACTIONS, AgentActionEvent
from gpubroker.gateway import db, decide, params
from gpubroker.gateway.catalog.query import OfferQuery, matching, sort_keys
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.models import Agent, AgentAction, Rental
from gpubroker.gateway.realtime.hub import Event, Hub
from gpubroker.gateway.rentals.budgets import over_budget, user_over_budget
from gpubroker.gateway.rentals.requests import ProvisionBody, ScaleBody, offered_by, provision_offer, rental_json
from gpubroker.gateway.rentals.service import RentalConflict, Rentals
from gpubroker.gateway.rentals.states import ENDED, RentalState

log = logging.getLogger(__name__)
ACTION_TYPES = ("query", "decide", "provision", "scale", "terminate")
QUERY_LIMIT = 20


class Refused(Exception):
    """Beyond the agent's budget or scope: refused before anything is asked of a provider."""


class AgentProvisionParams(ProvisionBody):
    idempotency_key: str | None = None


class RentalParams(ScaleBody):
    """A rental of the agent's, and for ``scale`` the GPUs it should have."""

    rental_id: uuid.UUID
    gpu_count: int = Field(default=1, ge=1, le=64)


class AgentActions:
    """Checks and runs agents' actions on one gateway instance."""

    def __init__(self, bus: Bus, hub: Hub, rentals: Rentals, catalog: Any, index: Any) -> None:
        self._bus = bus
        self._hub = hub
        self._rentals = rentals
        self._catalog = catalog
        self._index = index
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, agent: Agent, action_type: str, raw: dict[str, Any]) -> AgentAction:
        """Record the action; refuse it (``Refused``) when it is beyond the agent, else start it."""
        prepared = parse(action_type, raw)
        try:
            await self.check(agent, action_type, prepared)
        except Refused as refused:
            action = await db.run(
                AgentAction.objects.create,
                agent=agent, action_type=action_type, params=raw, status="refused", reason=str(refused),
            )  # fmt: skip
            await self._announce(agent, action)
            raise
        action = await db.run(AgentAction.objects.create, agent=agent, action_type=action_type, params=raw)
        await self._announce(agent, action)
        task = asyncio.create_task(self._run(agent, action, prepared), name=f"agent-action:{action.pk}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return action

    async def check(self, agent: Agent, action_type: str, prepared: Any) -> None:
        now = timezone.now()
        if action_type == "provision":
            offered = offered_by(self._rentals, self._catalog, prepared.offer_id)
            in_scope(agent, offered.provider, offered.gpu_type)
            over = await over_budget(agent, now, adding=offered.price_per_hour)
            if over:
                raise Refused(f"the rental would put the agent over budget: {over}")
            over = await user_over_budget(agent.user_id, now, adding=offered.price_per_hour)
            if over:
                raise Refused(f"the rental would put the agent's user over their rental budget: {over}")
        elif action_type in ("scale", "terminate"):
            rental = await db.run(lambda: Rental.objects.filter(pk=prepared.rental_id, agent=agent).first())
            if rental is None:
                raise Refused(f"rental {prepared.rental_id} is not this agent's")
            if action_type == "scale" and prepared.gpu_count > rental.gpu_count:
                more = rental.price_per_hour / rental.gpu_count * (prepared.gpu_count - rental.gpu_count)
                over = await over_budget(agent, now, adding=more)
                if over:
                    raise Refused(f"scaling would put the agent over budget: {over}")
                over = await user_over_budget(agent.user_id, now, adding=more)
                if over:
                    raise Refused(f"scaling would put the agent's user over their rental budget: {over}")
        elif action_type in ("query", "decide"):
            for name in prepared.provider or []:
                in_scope(agent, name, None)
            for gpu in prepared.gpu or []:
                in_scope(agent, None, gpu)

    async def _run(self, agent: Agent, action: AgentAction, prepared: Any) -> None:
        await self._status(agent, action, "running")
        try:
            result = await self._carry_out(agent, action, prepared)
        except (ApiError, RentalConflict) as exc:
            await self._status(agent, action, "failed", reason=getattr(exc, "message", str(exc)))
        except Exception:
            log.exception("agent action %s failed", action.pk)
            await self._status(agent, action, "failed", reason="the action failed; see the gateway's log")
        else:
            await self._status(agent, action, "succeeded", result=result)

    async def _carry_out(self, agent: Agent, action: AgentAction, prepared: Any) -> dict[str, Any]:
        if action.action_type in ("query", "decide"):
            return self._offers(agent, action.action_type, prepared)
        if action.action_type == "provision":
            body = ProvisionBody.model_validate(prepared.model_dump(exclude={"idempotency_key"}))
            key = prepared.idempotency_key or f"agent-action:{action.pk}"
            rental, _ = await provision_offer(
                self._rentals, self._catalog, body, user_id=agent.user_id, key=key, agent_id=agent.pk
            )
            await db.run(lambda: AgentAction.objects.filter(pk=action.pk).update(rental=rental))
            action.rental_id = rental.pk
            rental = await self._rentals.settled(
                rental.pk, done=lambda r: r.state not in (RentalState.REQUESTED, RentalState.PROVISIONING)
            )
            if rental.state == RentalState.FAILED:
                raise ApiError(409, None, f"{rental.provider} refused ({rental.failure_kind}): {rental.failure_reason}")
            return {"rental": rental_json(rental)}
        rental = await db.run(Rental.objects.get, pk=prepared.rental_id)
        if action.action_type == "scale":
            await self._rentals.scale(rental, prepared.gpu_count)
            rental = await self._rentals.settled(rental.pk, done=lambda r: r.pending_gpu_count is None)
            if rental.gpu_count != prepared.gpu_count:
                raise ApiError(409, None, f"{rental.provider} did not scale: {rental.last_error or 'no answer yet'}")
            return {"rental": rental_json(rental)}
        if rental.state not in ENDED:
            await self._rentals.terminate(rental)
        rental = await self._rentals.settled(rental.pk, done=lambda r: r.state in ENDED)
        return {"rental": rental_json(rental)}

    def _offers(self, agent: Agent, action_type: str, prepared: Any) -> dict[str, Any]:
        scoped = prepared.model_copy(
            update={
                "provider": prepared.provider or agent.allowed_providers or None,
                "gpu": prepared.gpu or agent.allowed_gpu_types or None,
            }
        )
        index = self._index()
        filters = params.filters(scoped, self._catalog.provider_names())
        query = OfferQuery(filters, "topsis", params.weights(scoped))
        if action_type == "decide":
            return decide.decide(index, query, scoped.alternatives)
        by_price = OfferQuery(filters, "price", params.weights(scoped))
        rows = matching(index, by_price)
        cheapest = rows[np.argsort(sort_keys(index, rows, by_price), kind="stable")][:QUERY_LIMIT]
        return {"items": [orjson.loads(index.rendered[row]) for row in cheapest], "total": len(rows)}

    async def _status(
        self, agent: Agent, action: AgentAction, status: str, *, reason: str = "", result: Any = None
    ) -> None:
        action.status, action.reason = status, reason
        action.result = None if result is None else orjson.loads(orjson.dumps(result, default=str))
        fields = {"status": status, "reason": reason, "result": action.result}
        await db.run(lambda: AgentAction.objects.filter(pk=action.pk).update(**fields))
        await self._announce(agent, action)

    async def _announce(self, agent: Agent, action: AgentAction) -> None:
        event = AgentActionEvent(
            str(agent.pk), str(action.pk), action.action_type, action.status, agent.user_id, timezone.now(),
            action.reason, action.result,
        )  # fmt: skip
        await self._bus.publish(AGENT_ACTIONS, str(agent.pk), event.encode())

    async def feed(self) -> None:
        """Every instance pushes every agent's action events to that agent's WebSockets."""
        async for record in self._bus.subscribe([AGENT_ACTIONS], from_beginning=False):
            if record.value is None:
                continue
            try:
                data = orjson.loads(record.value)
                owner, agent_id = int(data["user_id"]), str(data["agent_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            payload = orjson.dumps({"type": "action", **{k: v for k, v in data.items() if k != "schema"}})
            stream = f"g{record.partition}"
            event_id = self._hub.next_id(stream, record.offset)
            self._hub.publish(Event("agent_action", payload, stream, record.offset, event_id, agent_id, owner=owner))

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


def parse(action_type: str, raw: dict[str, Any]) -> Any:
    """The action's parameters, checked: a 422 naming ``params.<field>`` when wrong."""
    if action_type not in ACTION_TYPES:
        raise ApiError(422, "type", f"unknown action {action_type!r}; one of {', '.join(ACTION_TYPES)}")
    model: Any = {
        "query": decide.DecideParams,
        "decide": decide.DecideParams,
        "provision": AgentProvisionParams,
        "scale": RentalParams,
        "terminate": RentalParams,
    }[action_type]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("params", *first["loc"]))
        raise ApiError(422, where, first["msg"]) from None


def in_scope(agent: Agent, provider: str | None, gpu_type: str | None) -> None:
    if provider is not None and agent.allowed_providers and provider not in agent.allowed_providers:
        raise Refused(f"provider {provider} is outside the agent's scope ({', '.join(agent.allowed_providers)})")
    if gpu_type is not None and agent.allowed_gpu_types and gpu_type not in agent.allowed_gpu_types:
        raise Refused(f"GPU type {gpu_type} is outside the agent's scope ({', '.join(agent.allowed_gpu_types)})")


def action_json(action: AgentAction) -> dict[str, Any]:
    return {
        "id": action.pk,
        "agent_id": action.agent_id,
        "type": action.action_type,
        "params": action.params,
        "status": action.status,
        "reason": action.reason or None,
        "result": action.result,
        "rental_id": action.rental_id,
        "created_at": action.created_at,
        "updated_at": action.updated_at,
    }
