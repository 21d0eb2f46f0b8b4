"""``/ws/agents/<agent_id>/``: an agent's actions as they move, in real time.

Only the agent itself (its service token) may connect; another agent's id closes the connection
with 4404. After ``{"type": "connection_established", "agent_id": ...}`` every change of one of
its actions arrives as ``{"type": "event", "id": ..., "event": "agent_action", "data": {"type":
"action", "action_id", "action_type", "status", "reason", "result", ...}}``; ``{"type":
"ping"}`` is answered with ``{"type": "pong"}``. Forwarding and closing are the providers
socket's.
"""

from __future__ import annotations

import asyncio

import orjson

from gpubroker.gateway.identity.access import Requires
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.realtime.hub import Event
from gpubroker.gateway.realtime.sockets import ProvidersConsumer

NOT_YOURS = 4404


class AgentConsumer(ProvidersConsumer):
    requires = Requires(Permission.RENTALS, agents_only=True)

    async def connect(self) -> None:
        from gpubroker.gateway.agents.api import agent_of
        from gpubroker.gateway.runtime import current

        identity = self.scope.get("gpubroker.identity")
        wanted = self.scope["path"].strip("/").split("/")[-1]
        agent = await agent_of(identity.key_id if identity is not None else None)
        if agent is None or str(agent.pk) != wanted:
            await self.close(code=NOT_YOURS)
            return
        self.hub = current().hub
        self.agent_id = str(agent.pk)
        self.subscription = self.hub.subscribe(self._mine, owner=agent.user_id)
        await self.accept()
        await self._send({"type": "connection_established", "agent_id": self.agent_id})
        self.sender = asyncio.create_task(self._forward())
        await asyncio.sleep(0)  # let it start, so a disconnect at once finds a running task to cancel

    def _mine(self, event: Event) -> bool:
        return event.kind == "agent_action" and event.provider == self.agent_id

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            kind = orjson.loads(text_data or b"{}").get("type")
        except (orjson.JSONDecodeError, AttributeError):
            kind = None
        await self._send({"type": "pong"} if kind == "ping" else {"type": "error", "message": 'send {"type": "ping"}'})
