"""A stateful stand-in for a provider's rental API, for tests: the replay server's renting mode.

Recordings answer the same way every time, which is right for offers and wrong for renting: a
created instance must then be listed, boot, bill and end. ``Cloud`` keeps that state the same
way for every provider: instances go ``creating`` -> ``running`` (after ``boot_s``) ->
``terminated``, and each is billed from the moment it runs until it ends, every started unit of
the provider's billing granularity in full. Failures the real APIs have can be switched on:
out of capacity, insufficient balance, rejected credentials, and a create that succeeds at the
provider while its answer never arrives (the client times out).

Each plugin that rents ships a ``Dialect`` beside its recordings: it reads requests in the
provider's format, acts on the ``Cloud`` and writes answers in the provider's format (the
conformance kit checks those answers against the plugin's answer schemas). Pass one to
``ReplayServer(..., emulator=Emulator(MyDialect(), ...))``; requests the dialect does not claim
are answered from the recordings as before.

Timings are parameters (``boot_s``) and the clock can be replaced, so tests need no sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind

CENT_FRACTIONS = Decimal("0.000001")


@dataclass
class CloudFaults:
    """Failures to inject, each as the provider itself answers it."""

    out_of_capacity: bool = False
    insufficient_balance: bool = False
    auth_failure: bool = False
    timeout_after_create: bool = False
    """Create the instance, then never answer (the client times out not knowing)."""


@dataclass
class _Segment:
    start: float
    price_per_hour: Decimal
    end: float | None = None


@dataclass
class EmulatedInstance:
    instance_id: str
    tag: str
    offer_id: str
    region: str
    gpu_count: int
    price_per_hour: Decimal
    created_at: float
    boot_s: float
    ended_at: float | None = None
    segments: list[_Segment] = field(default_factory=list)

    def state(self, now: float) -> InstanceState:
        if self.ended_at is not None:
            return InstanceState.TERMINATED
        if now < self.created_at + self.boot_s:
            return InstanceState.CREATING
        return InstanceState.RUNNING


class Refused(Exception):
    """What the cloud answers instead of acting; the dialect writes it in the provider's words."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(kind, reason)


class Cloud:
    """One provider account's instances, lifecycle and bill (thread-safe: the server runs in its
    own thread while the test reads the bill)."""

    def __init__(
        self,
        *,
        granularity_s: int,
        boot_s: float = 0.05,
        prices: Mapping[str, Decimal] | None = None,
        default_price: Decimal = Decimal("2"),
        capacity: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.granularity_s = granularity_s
        self.boot_s = boot_s
        self.capacity = capacity
        self.faults = CloudFaults()
        self.clock = clock
        self.prices = dict(prices or {})
        """USD per GPU-hour by the provider's offer id (``default_price`` for the others)."""
        self.default_price = default_price
        self._instances: dict[str, EmulatedInstance] = {}
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self.hang_next_answer = False

    def price_per_gpu_hour(self, offer_id: str) -> Decimal:
        return self.prices.get(offer_id, self.default_price)

    def check_credentials(self) -> None:
        if self.faults.auth_failure:
            raise Refused(RefusalKind.AUTH, "invalid API key")

    def create(self, *, tag: str, offer_id: str, gpu_count: int, region: str = "") -> EmulatedInstance:
        self.check_credentials()
        with self._lock:
            if self.faults.out_of_capacity or (self.capacity is not None and len(self.live()) >= self.capacity):
                raise Refused(RefusalKind.OUT_OF_CAPACITY, "no capacity for this instance type")
            if self.faults.insufficient_balance:
                raise Refused(RefusalKind.INSUFFICIENT_BALANCE, "insufficient balance")
            now = self.clock()
            price = self.price_per_gpu_hour(offer_id) * gpu_count
            instance = EmulatedInstance(str(next(self._ids)), tag, offer_id, region, gpu_count, price, now, self.boot_s)
            instance.segments.append(_Segment(now + self.boot_s, price))
            self._instances[instance.instance_id] = instance
            if self.faults.timeout_after_create:
                self.hang_next_answer = True
            return instance

    def get(self, instance_id: str) -> EmulatedInstance:
        self.check_credentials()
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or instance.ended_at is not None:
                raise Refused(RefusalKind.NOT_FOUND, f"instance {instance_id} not found")
            return instance

    def live(self) -> list[EmulatedInstance]:
        """Instances not terminated: what the provider's list shows."""
        return [i for i in self._instances.values() if i.ended_at is None]

    def listed(self) -> list[EmulatedInstance]:
        self.check_credentials()
        with self._lock:
            return self.live()

    def terminate(self, instance_id: str) -> EmulatedInstance:
        instance = self.get(instance_id)
        with self._lock:
            self._end(instance)
        return instance

    def scale(self, instance_id: str, gpu_count: int) -> EmulatedInstance:
        instance = self.get(instance_id)
        with self._lock:
            if instance.state(self.clock()) is not InstanceState.RUNNING:
                raise Refused(RefusalKind.INVALID, f"instance {instance_id} is not running")
            now = self.clock()
            instance.segments[-1].end = now
            instance.gpu_count = gpu_count
            instance.price_per_hour = self.price_per_gpu_hour(instance.offer_id) * gpu_count
            instance.segments.append(_Segment(now, instance.price_per_hour))
            return instance

    def vanish(self, instance_id: str) -> None:
        """The provider ends an instance on its own (host failure, reclaimed): billing stops."""
        with self._lock:
            self._end(self._instances[instance_id])

    def instances(self) -> list[EmulatedInstance]:
        """Every instance ever created, ended ones included (for assertions)."""
        with self._lock:
            return list(self._instances.values())

    def bill(self, instance_id: str) -> Decimal:
        """What the provider charges for the instance so far: each running stretch rounded up
        to whole billing units."""
        with self._lock:
            instance = self._instances[instance_id]
            now = self.clock()
            total = Decimal(0)
            for segment in instance.segments:
                end = segment.end if segment.end is not None else now
                running_s = max(0.0, end - segment.start)
                units = math.ceil(running_s / self.granularity_s - 1e-9) if running_s > 0 else 0
                total += segment.price_per_hour * units * self.granularity_s / 3600
            return total.quantize(CENT_FRACTIONS, ROUND_HALF_EVEN)

    def _end(self, instance: EmulatedInstance) -> None:
        if instance.ended_at is not None:
            return
        now = self.clock()
        instance.ended_at = now
        last = instance.segments[-1]
        last.end = max(now, last.start)  # ended before it ran: nothing billed


@dataclass(frozen=True)
class EmulatedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    """JSON-serialisable, or ``bytes`` sent as they are."""
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class Dialect(ABC):
    """One provider's rental API on top of a ``Cloud``: its paths, its formats, its errors."""

    @abstractmethod
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        """The answer to a rental request, or None when the request is not one (the replay
        server then answers it from the recordings). Raise ``Refused`` to refuse."""

    @abstractmethod
    def refusal(self, refusal: Refusal) -> Answer:
        """How the provider answers a refusal of this kind."""


class Emulator:
    """A ``Dialect`` over a ``Cloud``, as the replay server calls it."""

    def __init__(self, dialect: Dialect, cloud: Cloud) -> None:
        self.dialect = dialect
        self.cloud = cloud
        self.answered: list[tuple[EmulatedRequest, Answer]] = []
        """Every rental request and its answer, for assertions (and the schema check)."""

    async def answer(self, request: EmulatedRequest) -> Answer | None:
        try:
            answer = self.dialect.answer(request, self.cloud)
        except Refused as refused:
            answer = self.dialect.refusal(refused.refusal)
        if answer is not None:
            self.answered.append((request, answer))
        if answer is not None and self.cloud.hang_next_answer:
            self.cloud.hang_next_answer = False
            await asyncio.sleep(3600)  # the instance exists; the client gives up waiting
        return answer
