"""Database work off the event loop: an outage is refused at once, probed by one call at a time."""

from __future__ import annotations

import asyncio

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
