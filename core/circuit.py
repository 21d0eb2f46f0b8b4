"""A circuit breaker per provider (SRS 3.3).

It watches the outcome of the last ``window`` requests. When at least ``failure_ratio`` of a
full window failed it opens: requests fail fast for ``reset_after_s``. Then it half-opens and
lets one request through; success closes it, failure opens it again. Every transition is
reported to ``on_transition`` (the worker publishes it as a provider event and a metric).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from gpubroker.core.errors import ProviderError


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(ProviderError):
    """The provider's circuit is open: the request was not sent."""


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        *,
        window: int = 10,
        failure_ratio: float = 0.5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[CircuitState, CircuitState], None] = lambda old, new: None,
    ) -> None:
        self.provider = provider
        self._window: deque[bool] = deque(maxlen=window)
        self._failure_ratio = failure_ratio
        self._reset_after_s = reset_after_s
        self._clock = clock
        self._on_transition = on_transition
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._reset_after_s:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def before_request(self) -> None:
        """Raise ``CircuitOpen`` unless a request may be sent now."""
        state = self.state
        if state is CircuitState.OPEN:
            retry_in = self._reset_after_s - (self._clock() - self._opened_at)
            raise CircuitOpen(self.provider, f"circuit open after repeated failures; next try in {retry_in:.0f}s")
        if state is CircuitState.HALF_OPEN:
            if self._probe_in_flight:
                raise CircuitOpen(self.provider, "circuit half-open; a probe request is in flight")
            self._probe_in_flight = True

    def record(self, success: bool) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self._window.clear()
            self._move(CircuitState.CLOSED if success else CircuitState.OPEN)
            return
        self._window.append(success)
        failures = self._window.count(False)
        if (
            self._state is CircuitState.CLOSED
            and len(self._window) == self._window.maxlen
            and failures >= self._failure_ratio * len(self._window)
        ):
            self._move(CircuitState.OPEN)

    def _move(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
            self._window.clear()
        if old is not new:
            self._on_transition(old, new)
