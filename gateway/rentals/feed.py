"""Rental events to their owner's subscribers: the ``rentals`` WebSocket channel and SSE.

Every gateway instance reads every ``gpubroker.rental-events`` record (no consumer group), so a
user's connections on any instance hear of each change to their rentals, and only theirs. A
record sent twice (``rentals.outbox`` says when) reaches them once: a rental's events come in
``sequence`` order, so one at or below the last sequence seen for its rental is dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import orjson

from gpubroker.core.bus import Bus
from gpubroker.core.rental_messages import RENTAL_EVENTS
from gpubroker.gateway.realtime.hub import Event, Hub

log = logging.getLogger(__name__)
STREAM_CODE = "r"


SEEN_RENTALS = 100_000
"""How many rentals' last sequences are remembered (the least recently heard are forgotten)."""


class RentalFeed:
    def __init__(self, bus: Bus, hub: Hub) -> None:
        self._bus = bus
        self._hub = hub
        self._seen: OrderedDict[str, int] = OrderedDict()

    def _repeated(self, rental_id: str, sequence: int) -> bool:
        """Whether this rental's event was heard already (and, if not, remember it)."""
        if sequence <= self._seen.get(rental_id, 0):
            return True
        self._seen[rental_id] = sequence
        self._seen.move_to_end(rental_id)
        if len(self._seen) > SEEN_RENTALS:
            self._seen.popitem(last=False)
        return False

    async def run(self) -> None:
        async for record in self._bus.subscribe([RENTAL_EVENTS], from_beginning=False):
            if record.value is None:
                continue
            try:
                event = orjson.loads(record.value)
                owner, provider = int(event["user_id"]), str(event["provider"])
                rental_id, sequence = str(event["rental_id"]), int(event.get("sequence") or 0)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("skipped a rental event that cannot be read: %s", exc)
                continue
            if sequence and self._repeated(rental_id, sequence):
                continue
            payload = {"type": "rental", **{k: v for k, v in event.items() if k not in ("schema", "user_id")}}
            stream = f"{STREAM_CODE}{record.partition}"
            event_id = self._hub.next_id(stream, record.offset)
            self._hub.publish(
                Event("rental", orjson.dumps(payload), stream, record.offset, event_id, provider, owner=owner)
            )
