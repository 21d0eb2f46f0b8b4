"""The outbox: each record leaves as soon as the bus acknowledges it, what waits is delivered on
its own within seconds of the bus's return, and a key's records never go out of order."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from gpubroker.core.bus import BusError, Delivery, Headers
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.workers.outbox import MAX_RETRY_S, Outbox, Pending


class ScriptedBus(MemoryBus):
    """A bus whose acknowledgements the test decides: ``up`` (at once), ``down`` (refused at
    once, as a broker that cannot be reached) or ``slow`` (outstanding until ``release``)."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "up"
        self.fail_keys: set[str] = set()
        self.published: list[tuple[str, str]] = []  # every attempt, acknowledged or not
        self.landed: list[tuple[str, str, bytes | None]] = []  # what reached the topics
        self._held: list[tuple[Delivery, tuple[str, str, bytes | None, Headers]]] = []

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> Delivery:
        self.published.append((topic, key))
        delivery: Delivery = asyncio.get_running_loop().create_future()
        if self.mode == "down" or key in self.fail_keys:
            delivery.set_exception(BusError("broker unreachable"))
        elif self.mode == "slow":
            self._held.append((delivery, (topic, key, value, headers)))
        else:
            await self._land(delivery, topic, key, value, headers)
        return delivery

    async def release(self) -> None:
        held, self._held = self._held, []
        for delivery, record in held:
            await self._land(delivery, *record)

    async def _land(self, delivery: Delivery, topic: str, key: str, value: bytes | None, headers: Headers) -> None:
        await super().publish(topic, key, value, headers)
        self.landed.append((topic, key, value))
        delivery.set_result(None)


def records(*keys: str, topic: str = "t") -> list[Pending]:
    return [(topic, key, f"{key}-{n}".encode(), ()) for n, key in enumerate(keys)]


@pytest.fixture
def bus() -> ScriptedBus:
    return ScriptedBus()


@pytest.fixture
def outbox(bus: ScriptedBus, tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite3", bus)


async def test_acknowledged_records_leave_at_once_and_never_go_out_twice(bus: ScriptedBus, outbox: Outbox) -> None:
    bus.fail_keys = {"b"}
    assert not await outbox.send(records("a", "b", "c"))
    assert outbox.pending == 1, "a and c were acknowledged and left; b waits"
    bus.fail_keys = set()
    assert await outbox.drain()
    assert Counter(key for _, key, _ in bus.landed) == {"a": 1, "b": 1, "c": 1}


async def test_a_keys_records_stay_in_order_when_an_earlier_one_fails(bus: ScriptedBus, outbox: Outbox) -> None:
    bus.fail_keys = {"x"}
    await outbox.send([("t", "x", b"x-1", ()), ("t", "y", b"y-1", ())])
    bus.fail_keys = set()
    await outbox.send([("t", "x", b"x-2", ())])
    assert [value for _, key, value in bus.landed if key == "x"] == [b"x-1", b"x-2"]


async def test_an_outstanding_record_is_waited_for_not_sent_again(bus: ScriptedBus, outbox: Outbox) -> None:
    bus.mode = "slow"
    assert not await outbox.send(records("a", "b"))  # no acknowledgement within the attempt
    assert outbox.pending == 2
    await bus.release()  # the broker answers late: the producer delivered them after all
    bus.mode = "up"
    assert await outbox.drain()
    assert len(bus.published) == 2 and len(bus.landed) == 2, "nothing published twice"


async def test_waiting_records_go_out_on_their_own_soon_after_the_bus_returns(bus: ScriptedBus, outbox: Outbox) -> None:
    bus.mode = "down"
    await outbox.send(records(*"abcdefghijklmnopqr"))  # 18 records, as a poll during an outage
    stop = asyncio.Event()
    running = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(3 * MAX_RETRY_S)  # down a while: the backoff has reached its ceiling
    bus.mode = "up"
    returned = time.monotonic()
    while outbox.pending and time.monotonic() - returned < 10:
        await asyncio.sleep(0.05)
    took = time.monotonic() - returned
    stop.set()
    await running
    assert outbox.pending == 0 and took <= MAX_RETRY_S + 0.5, f"delivered {took:.1f}s after the bus returned"
    assert [key for _, key, _ in bus.landed] == list("abcdefghijklmnopqr"), "in order, each once"


async def test_depth_and_the_oldest_records_age_are_known_and_survive_a_restart(
    bus: ScriptedBus, tmp_path: Path
) -> None:
    bus.mode = "down"
    first = Outbox(tmp_path / "o.sqlite3", bus)
    await first.send(records("a", "b"))
    await asyncio.sleep(0.2)
    assert first.pending == 2 and first.oldest_age_s() >= 0.2
    first.close()
    again = Outbox(tmp_path / "o.sqlite3", bus)
    assert again.pending == 2 and again.oldest_age_s() >= 0.2
    bus.mode = "up"
    assert await again.drain() and again.pending == 0 and again.oldest_age_s() == 0
