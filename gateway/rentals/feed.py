"""Rental events to their owner's subscribers: the ``rentals`` WebSocket channel and SSE.

Every gateway instance reads every ``gpubroker.rental-events`` record (no consumer group), so a
user's connections on any instance hear of each change to their rentals, and only theirs.
"""

from __future__ import annotations

import logging

import orjson

from gpubroker.core.bus import Bus
from gpubroker.core.rental_messages import RENTAL_EVENTS
from gpubroker.gateway.realtime.hub import Event, Hub

log = logging.getLogger(__name__)
STREAM_CODE = "r"


class RentalFeed:
    def __init__(self, bus: Bus, hub: Hub) -> None:
        self._bus = bus
        self._hub = hub

    async def run(self) -> None:
        async for record in self._bus.subscribe([RENTAL_EVENTS], from_beginning=False):
            if record.value is None:
                continue
            try:
                event = orjson.loads(record.value)
                owner, provider = int(event["user_id"]), str(event["provider"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("skipped a rental event that cannot be read: %s", exc)
                continue
            payload = {"type": "rental", **{k: v for k, v in event.items() if k not in ("schema", "user_id")}}
            stream = f"{STREAM_CODE}{record.partition}"
            event_id = self._hub.next_id(stream, record.offset)
            self._hub.publish(
                Event("rental", orjson.dumps(payload), stream, record.offset, event_id, provider, owner=owner)
            )
