"""The in-process bus's consumer groups: members split the records, plain subscribers see all."""

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
