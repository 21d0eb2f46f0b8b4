"""The hub: every change this gateway consumes, fanned out to its subscribers.

Each gateway instance consumes every record of the bus, so each instance's hub sees every change
and serves its own subscribers; nothing crosses instances but the bus itself.

An event's id is the bus position after it: the highest offset of each partition of each topic
it follows, written ``<stream>.<offset>`` (``o0`` for the offers topic's partition 0, ``p0`` for
the provider events') and joined by ``-``. Every instance consumes the same records at the
same offsets, so an id means the same everywhere, and a client that reconnects to any instance
with ``Last-Event-ID`` gets every retained event it has not seen (``since``).

Subscribers hold a bounded queue: a slow one loses its oldest events, never the gateway's
memory, and is told how many it missed. A client resuming from a position this instance does not
retain (it started after, or has since let those events go) is told of that gap too
(``unretained``), and so re-reads what it shows instead of trusting it is complete.
When the instance drains (``close``), every subscription ends, so that clients reconnect to
another instance and resume there without a gap; the server could otherwise not stop while a
stream is open. An event with an ``owner`` (a user's own alert) reaches
only that user's subscriptions, whatever they accept.

One change may go to ten thousand connections, so the per-subscriber work is kept to the
minimum: a waiting subscriber holds one bare future (no timer: the hub's ``heartbeat`` wakes
the idle ones all at once), and each transport renders an event once for all its subscribers
(``Event.rendered``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanKind

from gpubroker.core import tracing
from gpubroker.gateway.catalog.index import OfferIndex

RETAINED_EVENTS = 10_000
SUBSCRIBER_QUEUE = 1_000
HEARTBEAT_S = 15.0


_TRACER = tracing.tracer("gpubroker.gateway.hub")


@dataclass(frozen=True)
class Event:
    kind: str
    """price_update, availability, offer_added, offer_removed, health_status, price_alert, alert
    or market"""
    data: bytes
    """The payload, JSON, rendered once for every subscriber."""
    stream: str
    """Topic and partition, e.g. ``o0``."""
    offset: int
    id: str
    provider: str
    index: OfferIndex | None = None
    """The offer as a one-row index, so subscribers' filters apply to it as to the list."""
    owner: int | None = None
    """The user an event is for alone; None for everyone."""
    gpu_type: str | None = None
    """The GPU type of an event about no one offer (a market window), for ``gpu:`` channels."""
    rendered: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What each transport sends for this event, made by the first subscriber that needs it."""


Position = dict[str, int]


def parse_position(text: str) -> Position:
    """The streams' offsets an event id names; ValueError when it is not one of ours."""
    position = {}
    for part in text.split("-") if text else ():
        stream, dot, offset = part.partition(".")
        if not dot or not stream[:1].isalpha() or not stream[1:].isdigit():
            raise ValueError(f"not an event id: {text!r}")
        position[stream] = int(offset)
    return position


class Subscription:
    def __init__(
        self, accepts: Callable[[Event], bool], size: int = SUBSCRIBER_QUEUE, owner: int | None = None
    ) -> None:
        self.accepts = accepts
        self.owner = owner
        self._queue: deque[Event] = deque(maxlen=size)
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        self.closed = False
        """The hub has ended this subscription: send what is queued, then end the stream."""

    def sees(self, event: Event) -> bool:
        return event.owner is None or event.owner == self.owner

    def push(self, event: Event) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # the oldest goes; the subscriber is told how many it missed
        self._queue.append(event)
        self.wake()

    def close(self) -> None:
        self.closed = True
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self) -> tuple[list[Event], int]:
        """Queued events, after waiting for some if there are none, and how many were dropped
        since the last batch. An empty batch means the hub's heartbeat came first, or that the
        subscription is ``closed``."""
        if not self._queue and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        events = list(self._queue)
        self._queue.clear()
        dropped, self.dropped = self.dropped, 0
        return events, dropped


class Hub:
    def __init__(self, retained: int = RETAINED_EVENTS) -> None:
        self._retained: deque[Event] = deque(maxlen=retained)
        self._subscriptions: set[Subscription] = set()
        self._position: Position = {}
        self._unretained: Position = {}
        """Per stream, the last offset this hub may hold no event for: consumed before it went
        live, or evicted from the retained events since."""
        self.closing = False
        self.live = asyncio.Event()
        """Set once the instance has consumed the bus's backlog and publishes what comes next."""

    def next_id(self, stream: str, offset: int) -> str:
        """The id of an event at this bus position (the position after it)."""
        self._position[stream] = max(offset, self._position.get(stream, -1))
        return "-".join(f"{name}.{at}" for name, at in sorted(self._position.items()))

    def publish(self, event: Event) -> None:
        if tracing.exporting():  # a child of the ingest span that caused it: one trace from the poll
            with _TRACER.start_as_current_span(f"push {event.kind}", kind=SpanKind.PRODUCER) as span:
                span.set_attribute("gpubroker.subscribers", self._deliver(event))
        else:
            self._deliver(event)

    def not_retained(self, stream: str, offset: int) -> None:
        """A record consumed that no retained event stands for (before the hub went live)."""
        self._unretained[stream] = max(offset, self._unretained.get(stream, -1))

    def unretained(self, position: Position) -> int:
        """How many records after ``position`` (a client's last event id) this hub holds no event
        for, counted on the streams the position names: an upper bound of the events that client
        cannot get here, 0 when it can get them all."""
        return sum(max(0, self._unretained.get(stream, -1) - offset) for stream, offset in position.items())

    def _deliver(self, event: Event) -> int:
        """Queue ``event`` for each subscriber who wants it; how many did."""
        if len(self._retained) == self._retained.maxlen:
            evicted = self._retained[0]
            self.not_retained(evicted.stream, evicted.offset)
        self._retained.append(event)
        pushed = 0
        for subscription in self._subscriptions:
            if subscription.sees(event) and subscription.accepts(event):
                subscription.push(event)
                pushed += 1
        return pushed

    def subscribe(
        self, accepts: Callable[[Event], bool], size: int = SUBSCRIBER_QUEUE, owner: int | None = None
    ) -> Subscription:
        """``owner``: the subscribing user's id, which lets their own events through."""
        subscription = Subscription(accepts, size, owner)
        self._subscriptions.add(subscription)
        if self.closing:
            subscription.close()
        return subscription

    def close(self) -> None:
        """End every subscription, and those made from now on: the instance drains."""
        self.closing = True
        for subscription in self._subscriptions:
            subscription.close()

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def heartbeat(self) -> None:
        """Wake every waiting subscriber with an empty batch (time for a keep-alive)."""
        for subscription in self._subscriptions:
            subscription.wake()

    async def beat(self, every_s: float = HEARTBEAT_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.heartbeat()

    def since(self, position: Position, owner: int | None = None) -> Iterator[Event]:
        """Retained events after ``position`` that ``owner`` may see, oldest first."""
        return (
            event
            for event in self._retained
            if event.offset > position.get(event.stream, -1) and event.owner in (None, owner)
        )

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)
