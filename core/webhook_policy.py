"""What a webhook delivery attempt's outcome means, and when the next one is due.

Shared by the delivery service (the ``webhook_delivery`` DAG), which makes the attempts, and the
gateway, which records them and decides what follows, so both read an answer the same way:

- a 2xx delivers;
- a 5xx, a 408 or a 429, a timeout or a connection that fails is tried again, with exponential
  backoff (``RetrySchedule``: from ``initial_s``, doubling, each wait at most ``max_delay_s``)
  for at least ``window_s`` (24 hours) after the first attempt; then the delivery is exhausted
  and goes to the dead-letter topic;
- any other 4xx is final: the receiver refused this request and would refuse it again;
- a target refused by ``core.webtargets`` at delivery time (its name now resolves to a private
  address) is final and never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["delivered", "retry", "failed", "refused"]
ERROR_KINDS = ("timeout", "connection", "refused")
"""What an attempt that got no HTTP answer ran into: ``refused`` means the target check."""

RETRYABLE_4XX = frozenset({408, 429})


def outcome(status_code: int | None, error: str | None) -> Outcome:
    """The outcome of one attempt: its HTTP status, or the kind of error it ended in."""
    if status_code is None:
        if error == "refused":
            return "refused"
        return "retry"  # timeout, connection: the receiver may be back later
    if 200 <= status_code < 300:
        return "delivered"
    if status_code >= 500 or status_code in RETRYABLE_4XX:
        return "retry"
    return "failed"


@dataclass(frozen=True)
class RetrySchedule:
    initial_s: float = 30.0
    max_delay_s: float = 4 * 3600.0
    window_s: float = 24 * 3600.0

    def delay_after(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first)."""
        return timedelta(seconds=min(self.initial_s * 2 ** max(attempt - 1, 0), self.max_delay_s))

    def next_attempt(self, attempt: int, first_attempt_at: datetime, now: datetime) -> datetime | None:
        """When to try again after failed attempt ``attempt``, or None once the window is spent: the
        last attempt is the first one due at or past ``window_s`` after the first attempt."""
        if now - first_attempt_at >= timedelta(seconds=self.window_s):
            return None
        return now + self.delay_after(attempt)
