"""The soak's accounting: what the clients saw against what was written, and what that makes a
loss, an unflagged read or an undocumented error (see ``bench/soak.py``)."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from bench.soak_airflow import AirflowAccount
from bench.soak_alerts import AlertAccount
from bench.soak_flink import FlinkAccount
from gpubroker.core import events

DOCUMENTED = frozenset({429, 503})
"""Statuses the API documents for an overloaded or degraded moment; anything else non-2xx is a bug."""


@dataclass
class Window:
    name: str
    start: float
    healed: float = 0.0
    end: float = 0.0
    gateway: str = ""
    """The gateway stopped and started again (ready at ``healed``), if one was."""
    bus_away: bool = False
    """Kafka was stopped: a record stamped meanwhile (its producer's time) reached the gateways
    only once it was back, at ``healed``."""


FLAG_DELAY_S = 3.0
"""How long after a failed poll a read may still show the provider healthy (the event's way
through Kafka to both gateways)."""


@dataclass
class Subscriber:
    name: str
    pinned: bool
    lines: list[dict[str, object]]
    resumes: bool = True
    """An SSE stream resumes after a reconnection; a WebSocket does not, so while it is away it
    knows it may miss updates."""


@dataclass
class Result:
    windows: list[Window]
    reads: list[dict[str, object]]
    published: list[tuple[str, str, str, float]]
    """Price updates on the topic: offer id, old, new, time written."""
    subscribers: list[Subscriber]
    alerts: AlertAccount = field(default_factory=AlertAccount)
    flink: FlinkAccount | None = None
    """The analytics job's windows, when it ran (``--flink``)."""
    airflow: AirflowAccount | None = None
    """The DAGs' runs, when Airflow ran them (``--airflow``)."""
    provider_events: list[tuple[events.ProviderEvent, float]] = field(default_factory=list)
    """What the workers reported, with when it was written to the topic (epoch s)."""
    malformed_served: dict[str, int] = field(default_factory=dict)
    """Per provider, the malformed records the market sent (:class:`~bench.market.Chaos`)."""
    leaked: list[str] = field(default_factory=list)
    """Offers published from a malformed record (their id holds ``n/a``): none may be."""
    unflagged: list[dict[str, object]] = field(default_factory=list)
    """Reads answered while a provider's last poll had failed that did not flag it."""
    lost: dict[str, int] = field(default_factory=dict)
    """Per subscriber, updates missed without a gap announced that covers them."""
    told: dict[str, int] = field(default_factory=dict)
    """Per subscriber, updates missed inside a gap its stream announced."""
    unexpected: dict[str, int] = field(default_factory=dict)
    """Per subscriber, price updates received that were never published (or twice)."""

    @property
    def rejected(self) -> dict[str, int]:
        """Per provider with malformed records, the records its worker reported rejecting."""
        return {
            name: sum(
                int(e.data.get("rejected", 0))
                for e, _ in self.provider_events
                if e.provider == name and e.event_type == "poll.succeeded"
            )
            for name in self.malformed_served
        }

    @property
    def undocumented(self) -> list[dict[str, object]]:
        return [r for r in self.reads if not (200 <= int(r["status"]) < 300 or r["status"] in DOCUMENTED)]  # type: ignore[call-overload]


def account(result: Result) -> None:
    """Match each subscriber's price updates to the published ones, offer by offer and in order,
    and hold each update it missed against the gaps its stream announced (``told``); find the
    reads that did not flag a provider whose last poll had failed."""
    published: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for key, old, new, at in result.published:
        published[key].append((old, new, at))
    for subscriber in result.subscribers:
        received: dict[str, list[tuple[int, dict[str, object]]]] = defaultdict(list)
        for index, line in enumerate(subscriber.lines):
            if line.get("kind") == "price_update":
                received[str(line["offer_id"])].append((index, line))
        end = len(subscriber.lines)
        missed: list[tuple[int, int]] = []
        unexpected = 0
        for key in published.keys() | received.keys():
            gone, extra = _match(published.get(key, []), received.get(key, []), end)
            missed += gone
            unexpected += extra
        told = _told(missed, announcements(subscriber.lines, subscriber.resumes))
        result.lost[subscriber.name] = len(missed) - told
        result.told[subscriber.name] = told
        result.unexpected[subscriber.name] = unexpected
    result.unflagged = _unflagged(result)


def failing(reported: list[tuple[events.ProviderEvent, float]]) -> list[tuple[str, float, float]]:
    """Each stretch in which a provider's last poll had failed: provider, from (the failure
    reported, and written where the gateways read it), to (the next success), in epoch seconds."""
    stretches: list[tuple[str, float, float]] = []
    failed_at: dict[str, float] = {}
    for event, written in sorted(reported, key=lambda pair: pair[0].at):
        at = event.at.timestamp()
        if event.event_type == "poll.failed":
            failed_at.setdefault(event.provider, max(at, written))
        elif event.event_type == "poll.succeeded" and event.provider in failed_at:
            stretches.append((event.provider, failed_at.pop(event.provider), at))
    stretches += [(provider, at, float("inf")) for provider, at in failed_at.items()]
    return stretches


def _unflagged(result: Result) -> list[dict[str, object]]:
    """Reads answered 200 while a provider's data was not fresh that still called it healthy
    (not counting those a client sent straight to a restarted gateway before it was ready: a
    load balancer sends it none)."""
    found = []
    for provider, stamped, until in failing(result.provider_events):
        since = readable(stamped, result.windows)
        for read in result.reads:
            at = float(read["t"])  # type: ignore[arg-type]
            flagged = provider in read["unwell"]  # type: ignore[operator]
            starting = any(w.gateway == read["gateway"] and w.start <= at <= w.healed for w in result.windows)
            if read["status"] == 200 and since + FLAG_DELAY_S <= at < until and not flagged and not starting:
                found.append({**read, "provider": provider})
    return found


def readable(stamped: float, windows: list[Window]) -> float:
    """When a record its producer stamped at ``stamped`` could first be read: when the bus was
    back, if it was away then (a record stamped just before the stop may still have been in
    flight)."""
    for window in windows:
        if window.bus_away and window.start - FLAG_DELAY_S <= stamped <= window.healed:
            return window.healed
    return stamped


def announcements(lines: list[dict[str, object]], resumes: bool) -> list[tuple[int, float]]:
    """Where in a subscriber's stream it was told it missed events, and how many each time: each
    ``gap`` event (its ``dropped``), and for a subscriber that does not resume, each subscription
    made again after losing its connection (any number; ``len(lines)`` when it never was)."""
    found: list[tuple[int, float]] = []
    away = False
    for index, line in enumerate(lines):
        if line.get("kind") == "gap":
            found.append((index, float(line["dropped"])))  # type: ignore[arg-type]
        elif not resumes and line.get("kind") == "disconnected":
            away = True
        elif not resumes and line.get("kind") == "connected" and away:
            found.append((index, math.inf))
            away = False
    if away:
        found.append((len(lines), math.inf))
    return found


def _told(missed: list[tuple[int, int]], told_at: list[tuple[int, float]]) -> int:
    """How many of the ``missed`` updates the announcements stand for. A missed update lies, in
    the stream, between the updates of its offer received before and after it (``(after,
    before)``, line indexes); an announcement there may stand for it, and for no more events than
    it counted. The most that can be matched so: the updates taken by where their window closes,
    each given the first announcement in it with room left (as intervals are matched to points)."""
    where = [index for index, _ in told_at]
    room = [count for _, count in told_at]
    told = 0
    for after, before in sorted(missed, key=lambda window: window[1]):
        at = bisect.bisect_right(where, after)
        while at < len(where) and where[at] < before and not room[at]:
            at += 1
        if at < len(where) and where[at] < before:
            room[at] -= 1
            told += 1
    return told


def announced_gaps(lines: list[dict[str, object]], resumes: bool, kind: str) -> list[tuple[float, float]]:
    """For events that have no order to be placed by (a user's alerts, each one of a kind), the
    times a subscriber was told it may miss them: for each ``gap`` event, from the last event of
    ``kind`` received before it to the gap's arrival; for a subscriber that does not resume, also
    from the last one before it lost its connection to the moment it is subscribed again."""
    gaps: list[tuple[float, float]] = []
    last, away = 0.0, None
    for line in lines:
        at = float(line["t"])  # type: ignore[arg-type]
        if line.get("kind") == kind:
            last = at
        elif line.get("kind") == "gap":
            gaps.append((last, at))
        elif not resumes and line.get("kind") == "disconnected" and away is None:
            away = last
        elif not resumes and line.get("kind") == "connected" and away is not None:
            gaps.append((away, at))
            away = None
    if away is not None:
        gaps.append((away, float("inf")))
    return gaps


GAP_SLACK_S = 2.0
"""An event written this close to the edges of an announced gap counts as inside it."""


def covered(at: float, gaps: list[tuple[float, float]]) -> bool:
    """Whether an event written at ``at`` falls in one of ``gaps`` (with ``GAP_SLACK_S``)."""
    return any(begin - GAP_SLACK_S <= at <= end + GAP_SLACK_S for begin, end in gaps)


def _match(
    published: list[tuple[str, str, float]], received: list[tuple[int, dict[str, object]]], end: int
) -> tuple[list[tuple[int, int]], int]:
    """The published updates missing from ``received`` (one offer's, with their line indexes),
    walking both in order, each as the lines of the received ones around it (``-1`` and ``end``
    when there are none); and how many received ones match nothing published."""
    missed: list[tuple[int, int]] = []
    at = 0
    for old, new, _ in published:
        if at < len(received) and _same(received[at][1], old, new):
            at += 1
        else:
            after = received[at - 1][0] if at else -1
            missed.append((after, received[at][0] if at < len(received) else end + 1))
    return missed, len(received) - at


def _same(line: dict[str, object], old: str, new: str) -> bool:
    return (_number(str(line["old"])), _number(str(line["new"]))) == (_number(old), _number(new))


def _number(price: str) -> str:
    """One spelling for a price as the stream writes it (a JSON number) and the topic (a string)."""
    return "None" if price in ("None", "null") else str(Decimal(price).normalize())
