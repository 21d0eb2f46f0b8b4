"""The worker's health, written after every poll and read by ``gpubroker worker --check``.

A file rather than an HTTP call so a Kubernetes exec probe works even while the worker is busy:
the worker is unhealthy when its last poll failed (the reason is printed) or when it has not
written for several poll intervals (it is stuck).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

STUCK_AFTER_INTERVALS = 3
STUCK_GRACE_S = 120.0


class HealthFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(
        self,
        *,
        healthy: bool,
        reason: str | None,
        interval_s: float,
        outbox: int,
        outbox_oldest_s: float = 0.0,
        credentials: str | None = None,
        polled_at: float | None = None,
    ) -> None:
        """``polled_at``: when the last poll ended (what tells a stuck worker); the report itself
        is also rewritten between polls when the outbox changes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        body = {
            "healthy": healthy,
            "reason": reason,
            "interval_s": interval_s,
            "outbox": outbox,
            "outbox_oldest_s": round(outbox_oldest_s, 1),
            "credentials": credentials,
            "polled_at": now if polled_at is None else polled_at,
            "at": now,
        }
        partial = self.path.with_suffix(".tmp")
        partial.write_bytes(orjson.dumps(body))
        os.replace(partial, self.path)  # readers never see half a file

    def check(self, now: float | None = None) -> tuple[bool, str]:
        """(healthy, explanation)."""
        try:
            body = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return False, f"no health report at {self.path} yet (has the worker started?)"
        except orjson.JSONDecodeError:
            return False, f"unreadable health report at {self.path}"
        age = (now if now is not None else time.time()) - float(body.get("polled_at", body["at"]))
        if age > float(body["interval_s"]) * STUCK_AFTER_INTERVALS + STUCK_GRACE_S:
            return False, f"no poll reported for {age:.0f}s; the worker looks stuck"
        if not body["healthy"]:
            return False, f"last poll failed: {body['reason']}"
        waiting = f"{body['outbox']} records waiting for the bus"
        if body["outbox"]:
            waiting += f" (the oldest for {float(body.get('outbox_oldest_s', 0)):.0f}s)"
        note = f"; {body['credentials']}" if body.get("credentials") else ""
        return True, f"healthy; last poll {age:.0f}s ago; {waiting}{note}"
