"""Rental events as a transactional outbox: written with the state change, relayed to Kafka after.

A rental's move and its ``RentalEvent`` are one database transaction (``record`` inside it), so a
gateway that dies, or a Kafka that is away, between the two can no longer lose the event. Every
gateway instance runs an ``EventRelay``: it takes the oldest events waiting (``SELECT ... FOR
UPDATE SKIP LOCKED``, so instances share the work without waiting on one another), publishes them
to ``gpubroker.rental-events`` keyed by rental, waits for Kafka's acknowledgement and deletes them
in the same transaction. While Kafka is away the transaction rolls back and the events wait; they
go out, in order, once it answers again.

Order per rental: an instance publishes its batch in id order, and leaves out an event whose
rental has an earlier one still waiting that another instance holds (a plain read sees rows
locked by others), so two instances never publish one rental's events out of order. Ids follow
the order of a rental's moves: each move updates the rental's row first, which waits for the
previous move's transaction to commit, and only then writes its event.

A batch whose acknowledgement does not come in time is rolled back, but its records are not
withdrawn: the idempotent producer keeps them and retries until Kafka answers. The relay keeps
those deliveries and, on its next try, waits for them instead of publishing the events again.

Each event carries its row's id as ``sequence``; an instance that dies after Kafka acknowledged
and before its commit leaves the events to be sent again, and a reader drops a rental's event
whose sequence it has already seen (``RentalFeed`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import orjson
from django.db import connection, transaction

from gpubroker.core.bus import Bus, Delivery
from gpubroker.core.rental_messages import RENTAL_EVENTS, RentalEvent
from gpubroker.gateway import db
from gpubroker.gateway.models import RentalEventRecord

log = logging.getLogger(__name__)
BATCH = 200
IDLE_S = 1.0
"""How often an idle relay looks for events (another instance's, left behind); its own are
relayed as soon as they are written."""
ACK_WAIT_S = 15.0
"""How long a batch waits for Kafka (queueing and acknowledgement) before it is rolled back and
tried again; meanwhile its rows stay locked and one database connection stays taken."""
RETRY_MAX_S = 5.0


def record(event: RentalEvent) -> None:
    """Keep ``event`` for the relay; call it inside the transaction that made the change."""
    RentalEventRecord.objects.create(rental_id=event.rental_id, event=event.as_json())


class EventRelay:
    """Use as ``await EventRelay(bus).run()``; ``wake()`` after writing events relays them now."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._wake = asyncio.Event()
        self._sent: dict[int, Delivery] = {}
        """Deliveries handed to the producer for rows not yet deleted, by row id."""
        self.relayed = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                sent = await self.relay()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("relaying rental events failed (%s); they wait and are tried again", exc)
                await asyncio.sleep(min(RETRY_MAX_S, 0.2 * 2**failures))
                continue
            if sent < BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=IDLE_S)

    async def relay(self) -> int:
        """Publish one batch of waiting events and delete them once acknowledged; how many."""
        loop = asyncio.get_running_loop()
        sent = await db.run(self._relay_batch, lambda work: asyncio.run_coroutine_threadsafe(work, loop).result())
        if not sent:  # nothing waits: a delivery still remembered is for rows another instance sent
            self._sent = {pk: delivery for pk, delivery in self._sent.items() if not delivery.done()}
        for pk in sent:
            self._sent.pop(pk, None)
        self.relayed += len(sent)
        return len(sent)

    def _relay_batch(self, on_loop: Any) -> list[int]:
        # Without row locks (SQLite, embedded: one gateway) a transaction held while Kafka answers
        # would only make every other write wait; the rows are read, sent, then deleted.
        locking = connection.features.has_select_for_update
        with transaction.atomic() if locking else contextlib.nullcontext():
            waiting = RentalEventRecord.objects.order_by("pk")
            rows = _in_order(list((waiting.select_for_update(skip_locked=True) if locking else waiting)[:BATCH]))
            if not rows:
                return []
            on_loop(self._publish(rows))
            sent = [row.pk for row in rows]
            RentalEventRecord.objects.filter(pk__in=sent).delete()
        return sent

    def _publish(self, rows: list[RentalEventRecord]) -> Coroutine[Any, Any, None]:
        async def publish() -> None:
            deliveries = []
            for row in rows:
                delivery = self._sent.get(row.pk)
                if delivery is None or (delivery.done() and (delivery.cancelled() or delivery.exception())):
                    value = orjson.dumps({**row.event, "sequence": row.pk})
                    delivery = self._sent[row.pk] = await self._bus.publish(RENTAL_EVENTS, str(row.rental_id), value)
                deliveries.append(delivery)
            # Shielded: giving up the wait must leave the deliveries to finish for the next try.
            await asyncio.gather(*map(asyncio.shield, deliveries))

        return asyncio.wait_for(publish(), timeout=ACK_WAIT_S)  # queueing can wait on Kafka too


def _in_order(rows: list[RentalEventRecord]) -> list[RentalEventRecord]:
    """``rows`` (locked by this transaction) without those whose rental has an earlier event
    still waiting elsewhere (locked by another instance): they wait for it to go first."""
    if not rows:
        return rows
    mine = {row.pk for row in rows}
    others = (
        RentalEventRecord.objects.filter(rental_id__in={row.rental_id for row in rows}, pk__lt=max(mine))
        .exclude(pk__in=mine)
        .values_list("rental_id", "pk")
    )
    first_elsewhere: dict[Any, int] = {}
    for rental_id, pk in others:
        first_elsewhere[rental_id] = min(pk, first_elsewhere.get(rental_id, pk))
    return [row for row in rows if row.pk < first_elsewhere.get(row.rental_id, row.pk + 1)]
