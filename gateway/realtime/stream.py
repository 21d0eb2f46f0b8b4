"""``GET /api/v2/providers/stream``: changes to the offers matching the list's filters, as
Server-Sent Events.

Each event has an ``id`` (a bus position, the same on every instance) and a type
(``price_update``, ``availability``, ``offer_added``, ``offer_removed``, ``health_status``,
``price_alert`` for the market's significant changes and anomalies, ``alert`` for the signed-in
caller's own alert rules, and ``rental`` for each change to the signed-in caller's own rentals,
whatever the filters); a
client that reconnects with ``Last-Event-ID`` first gets every retained event it missed. A
comment line at each of the hub's heartbeats keeps proxies from closing a quiet stream, and a ``gap``
event tells a client too slow to keep up how many events it lost, or one resuming from a position
this instance does not retain how many records it may have missed. The stream ends when the
instance drains; the client reconnects (``retry``) and resumes elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

import orjson
from django.http import HttpRequest, StreamingHttpResponse
from pydantic import Field

from gpubroker.gateway import params
from gpubroker.gateway.catalog.filters import OfferFilters
from gpubroker.gateway.errors import invalid
from gpubroker.gateway.realtime.hub import Event, Hub, Position, parse_position

RETRY_MS = 3000


class StreamParams(params.OfferFilterParams):
    last_event_id: Annotated[
        str | None, Field(description="Resume after this event id (as the Last-Event-ID header does).")
    ] = None


def open_stream(
    request: HttpRequest, hub: Hub, filters: OfferFilters, last_event_id: str | None, owner: int | None
) -> StreamingHttpResponse:
    """``owner``: the signed-in caller's user id, whose own alerts and rentals the stream carries too."""

    def accepts(event: Event) -> bool:
        if event.kind == "market":  # the market's windows have a stream of their own
            return False
        if event.kind == "rental":  # the caller's own rentals (the hub passes no one else's), whatever the filters
            return True
        if event.index is None:  # provider health: only the providers asked about, if any
            return not filters.providers or event.provider in filters.providers
        return bool(filters.mask(event.index)[0])

    return event_stream(request, hub, accepts, last_event_id, owner)


def event_stream(
    request: HttpRequest, hub: Hub, accepts: Callable[[Event], bool], last_event_id: str | None, owner: int | None
) -> StreamingHttpResponse:
    """The hub's events that ``accepts`` lets through, as Server-Sent Events, first the retained
    ones after ``Last-Event-ID`` (the header, or ``last_event_id``) when it is given."""
    resume_from = request.headers.get("Last-Event-ID") or last_event_id
    try:
        position = parse_position(resume_from) if resume_from else None
    except ValueError:
        raise invalid("Last-Event-ID", f"{resume_from!r} is not an event id from this stream") from None
    resuming_early = position is not None and not hub.live.is_set()
    subscription = None if resuming_early else hub.subscribe(accepts, owner=owner)

    async def events() -> AsyncIterator[bytes]:
        nonlocal subscription
        sent: Position = {}

        def fresh(event: Event) -> bool:  # a missed event may also have been queued meanwhile
            if event.offset <= sent.get(event.stream, -1):
                return False
            sent[event.stream] = event.offset
            return True

        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            if subscription is None:  # resuming while the instance still consumes the bus's backlog:
                await hub.live.wait()  # what the client may have missed is known once it is live
                subscription = hub.subscribe(accepts, owner=owner)
            missed = [event for event in hub.since(position, owner) if accepts(event)] if position is not None else []
            unretained = hub.unretained(position) if position is not None else 0
            if unretained:
                yield _gap(unretained)
            for event in missed:
                if fresh(event):
                    yield _frame(event)
            while True:
                batch, dropped = await subscription.next_batch()
                if dropped:
                    yield _gap(dropped)
                for event in batch:
                    if fresh(event):
                        yield _frame(event)
                if subscription.closed:
                    return  # the instance drains: the client resumes on another
                if not batch:
                    yield b": keep-alive\n\n"
        finally:
            if subscription is not None:
                hub.unsubscribe(subscription)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass events on as they come
    return response


def _gap(dropped: int) -> bytes:
    return b"event: gap\ndata: " + orjson.dumps({"dropped": dropped}) + b"\n\n"


def _frame(event: Event) -> bytes:
    frame = event.rendered.get("sse")
    if frame is None:
        head = b"id: " + event.id.encode() + b"\nevent: " + event.kind.encode() + b"\ndata: "
        frame = event.rendered["sse"] = head + event.data + b"\n\n"
    return frame  # type: ignore[no-any-return]
