"""The in-process bus: consumer groups split the records, plain subscribers see all and are told
when they have caught up."""

from __future__ import annotations

import asyncio

from gpubroker.core.bus import Record
from gpubroker.core.bus.memory import MemoryBus


async def test_group_members_split_new_records_by_key_and_others_see_everything() -> None:
    bus = MemoryBus()
    await bus.publish("t", "before", b"0")  # a group starts with new records
    seen: dict[str, list[Record]] = {"a": [], "b": [], "all": []}

    async def follow(name: str, group: str | None) -> None:
        async for record in bus.subscribe(["t"], group=group):
            seen[name].append(record)

    tasks = [asyncio.create_task(follow(name, None if name == "all" else "g")) for name in seen]
    await asyncio.sleep(0)
    keys = [f"k{i}" for i in range(40)]
    for key in keys * 2:
        await bus.publish("t", key, b"1")
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    a, b = ({r.key for r in seen[name]} for name in "ab")
    assert a and b and not a & b and a | b == set(keys)  # each key to one member, every time
    assert len(seen["a"]) + len(seen["b"]) == 80
    assert [r.key for r in seen["all"]] == ["before", *keys, *keys]


async def test_a_subscriber_is_told_once_it_has_every_record_retained_when_it_subscribed() -> None:
    bus = MemoryBus()
    for number in range(3):
        await bus.publish("t", f"k{number}", b"0")
    caught_up, seen = asyncio.Event(), []

    async def follow() -> None:
        async for record in bus.subscribe(["t"], caught_up=caught_up):
            seen.append(record)

    task = asyncio.create_task(follow())
    await asyncio.wait_for(caught_up.wait(), 1)
    assert len(seen) == 3
    task.cancel()
