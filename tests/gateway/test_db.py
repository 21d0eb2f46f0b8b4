"""Database work off the event loop: an outage is refused at once, probed by one call at a time."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import OperationalError

from gpubroker.gateway import db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_after_a_failure_work_is_refused_at_once_until_a_probe_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PROBE_EVERY_S", 0.2)
    calls: list[str] = []

    def down() -> None:
        calls.append("down")
        raise OperationalError("connection refused")

    def up() -> str:
        calls.append("up")
        return "answered"

    with pytest.raises(db.DatabaseUnavailable, match="connection refused"):
        await db.run(down)
    with pytest.raises(db.DatabaseUnavailable, match="moments ago"):
        await db.run(up)  # refused without touching the database
    assert calls == ["down"]
    await asyncio.sleep(0.25)
    assert await db.run(up) == "answered"  # the probe finds it back
    assert await db.run(up) == "answered" and calls == ["down", "up", "up"]


async def test_work_whose_caller_was_cancelled_is_waited_for_by_finish() -> None:
    started, go_on, ended = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        go_on.wait(5)
        ended.set()

    caller = asyncio.create_task(db.run(slow))
    assert await asyncio.to_thread(started.wait, 5)
    caller.cancel()  # as a shutdown cancels its tasks: the thread goes on all the same
    assert not await db.finish(0.1) and not ended.is_set()
    go_on.set()
    assert await db.finish(5) and ended.is_set()
