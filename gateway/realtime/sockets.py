"""``/ws/providers/``: the WebSocket API (Django Channels), fed by the hub.

After connecting, a client gets ``{"type": "connection_established"}`` and then sends:

- ``{"type": "subscribe", "channels": [...]}`` and ``{"type": "unsubscribe", "channels": [...]}``
  with channels ``price_updates``, ``availability``, ``health_status``, ``price_alerts`` (the
  market's significant changes and anomalies), ``alerts`` (the signed-in user's own alert
  rules firing; nobody else's), ``rentals`` (each state change of the signed-in user's own
  rentals, with its cost), ``market`` (each closed 1-minute window of the market's per-GPU
  prices, per GPU type and continent; Pro plan), ``provider:<name>``, ``gpu:<type>`` and ``region:<name>``;
- ``{"type": "ping"}``, answered with ``{"type": "pong"}``.

Events arrive as ``{"type": "event", "id": ..., "event": <kind>, "data": {...}}``. Channels
narrow each other the way a user means them: ``price_updates`` with ``gpu:H100`` is H100 price
updates; several names of one kind (``gpu:H100`` and ``gpu:A100``) are either. The guard has
already authenticated the connection (``?token=``, or anonymous at the Free plan's limits).
A slow client's queue is bounded: the oldest events go and it is sent a ``gap`` notice. A
connection holds at most ``MAX_CHANNELS`` subscriptions and a message is at most
``MAX_MESSAGE_BYTES``; a larger one closes the connection with 1009 (message too big).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer

from gpubroker.core.gpus import get, resolve
from gpubroker.gateway.identity.access import Requires
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.realtime.hub import Event, Subscription

KINDS = {
    "price_updates": frozenset({"price_update"}),
    "availability": frozenset({"availability", "offer_added", "offer_removed"}),
    "health_status": frozenset({"health_status"}),
    "price_alerts": frozenset({"price_alert"}),
    "alerts": frozenset({"alert"}),
    "rentals": frozenset({"rental"}),
    "market": frozenset({"market"}),
}
PREFIXES = ("provider", "gpu", "region")
MAX_CHANNELS = 100
"""Subscriptions one connection may hold, in all of its messages together."""
MAX_MESSAGE_BYTES = 16 * 1024
MESSAGE_TOO_BIG = 1009
SERVICE_RESTART = 1012
"""The close code when the instance drains: reconnect (to another instance) and subscribe again."""


@dataclass
class Interests:
    """What one connection subscribed to."""

    kinds: set[str] = field(default_factory=set)
    named: dict[str, set[str]] = field(default_factory=lambda: {prefix: set() for prefix in PREFIXES})

    def parse(self, channel: str) -> tuple[str, str]:
        if channel in KINDS:
            return "kind", channel
        prefix, _, name = channel.partition(":")
        if prefix not in PREFIXES or not name:
            raise ValueError(
                f"unknown channel {channel!r}; use {', '.join(KINDS)}, provider:<name>, gpu:<type> or region:<name>"
            )
        if prefix == "gpu":
            spec = get(name)
            name = spec.name if spec is not None else (resolve(name).gpu_type or name)
        return prefix, name.lower() if prefix == "region" else name

    @property
    def count(self) -> int:
        return len(self.kinds) + sum(len(names) for names in self.named.values())

    def change(self, channels: list[str], add: bool) -> None:
        """Subscribe to (or drop) ``channels``, all or none: a ``ValueError`` names the problem."""
        parsed = [self.parse(channel) for channel in channels]
        if add:
            new = {(where, name) for where, name in parsed if name not in self._target(where)}
            if self.count + len(new) > MAX_CHANNELS:
                raise ValueError(
                    f"a connection holds at most {MAX_CHANNELS} channels; it has {self.count}, unsubscribe some first"
                )
        for where, name in parsed:
            target = self._target(where)
            (target.add if add else target.discard)(name)

    def _target(self, where: str) -> set[str]:
        return self.kinds if where == "kind" else self.named[where]

    def accepts(self, event: Event) -> bool:
        if not self.kinds and not any(self.named.values()):
            return False
        if self.kinds and not any(event.kind in KINDS[kind] for kind in self.kinds):
            return False
        if self.named["provider"] and event.provider not in self.named["provider"]:
            return False
        offer = event.index.offers[0] if event.index is not None else None
        gpu_type = offer.gpu_type if offer is not None else event.gpu_type
        if self.named["gpu"] and (gpu_type is None or gpu_type not in self.named["gpu"]):
            return False
        return not self.named["region"] or (offer is not None and offer.region.lower() in self.named["region"])


class ProvidersConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    requires = Requires(Permission.READ_OFFERS)

    async def connect(self) -> None:
        from gpubroker.gateway.runtime import current

        self.hub = current().hub
        self.interests = Interests()
        identity = self.scope.get("gpubroker.identity")
        self.user_id = None if identity is None else identity.user_id
        self.may_read_market = identity is not None and identity.may(Permission.ANALYTICS)
        self.subscription: Subscription = self.hub.subscribe(self.interests.accepts, owner=self.user_id)
        await self.accept()
        plan = identity.plan.value if identity is not None else "anonymous"
        await self._send(
            {"type": "connection_established", "plan": plan, "channels": [*KINDS, *[f"{p}:<name>" for p in PREFIXES]]}
        )
        self.sender = asyncio.create_task(self._forward())
        await asyncio.sleep(0)  # let it start, so a disconnect at once finds a running task to cancel

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "subscription"):
            self.hub.unsubscribe(self.subscription)
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_MESSAGE_BYTES:
            return await self.close(code=MESSAGE_TOO_BIG)
        try:
            message = orjson.loads(text_data or bytes_data or b"")
            kind = message["type"] if isinstance(message, dict) else None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return await self._send({"type": "error", "message": "send JSON objects with a 'type'"})
        if kind == "ping":
            return await self._send({"type": "pong"})
        if kind not in ("subscribe", "unsubscribe"):
            return await self._send({"type": "error", "message": f"unknown message type {kind!r}"})
        channels = message.get("channels")
        if (
            not isinstance(channels, list)
            or not all(isinstance(c, str) for c in channels)
            or len(channels) > MAX_CHANNELS
        ):
            return await self._send(
                {"type": "error", "message": f"'channels' must be a list of up to {MAX_CHANNELS} names"}
            )
        if kind == "subscribe" and {"alerts", "rentals"} & set(channels) and self.user_id is None:
            return await self._send(
                {"type": "error", "message": "sign in (?token=) to receive your alerts and rentals"}
            )
        if kind == "subscribe" and "market" in channels and not self.may_read_market:
            return await self._send({"type": "error", "message": "the market channel needs the Pro plan"})
        try:
            self.interests.change(channels, add=kind == "subscribe")
        except ValueError as exc:
            return await self._send({"type": "error", "message": str(exc)})
        await self._send({"type": f"{kind}d", "channels": channels})

    async def _forward(self) -> None:
        while True:
            batch, dropped = await self.subscription.next_batch()
            if dropped:
                await self._send({"type": "gap", "dropped": dropped})
            for event in batch:
                await self.base_send(_message(event))
            if self.subscription.closed:  # the instance drains: the client reconnects to another
                return await self.close(code=SERVICE_RESTART)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(text_data=orjson.dumps(message).decode())


def _agent_consumer() -> type[AsyncWebsocketConsumer]:
    from gpubroker.gateway.agents.socket import AgentConsumer

    return AgentConsumer  # type: ignore[no-any-return]


WEBSOCKETS: dict[str, type[AsyncWebsocketConsumer]] = {
    "/ws/providers/": ProvidersConsumer,
    "/ws/agents/<agent_id>/": _agent_consumer(),
}
"""The WebSocket endpoints: path -> consumer (each declares what it ``requires``)."""


def _message(event: Event) -> dict[str, str]:
    """The ASGI message sending ``event``: one for all of its subscribers (servers only read it)."""
    message = event.rendered.get("websocket")
    if message is None:
        head = orjson.dumps({"type": "event", "id": event.id, "event": event.kind})[:-1]
        text = (head + b',"data":' + event.data + b"}").decode()
        message = event.rendered["websocket"] = {"type": "websocket.send", "text": text}
    return message  # type: ignore[no-any-return]
