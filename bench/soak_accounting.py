"""The soak's accounting: what the clients saw against what was written, and what that makes a
loss, an unflagged read or an undocumented error (see ``bench/soak.py``)."""

from __future__ import annotations

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


GAP_SLACK_S = 2.0
"""An update written this close to the edges of an announced gap counts as inside it."""


def account(result: Result) -> None:
    """Match each subscriber's price updates to the published ones, offer by offer and in order;
    find the reads that did not flag a provider whose last poll had failed."""
    published: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for key, old, new, at in result.published:
        published[key].append((old, new, at))
    for subscriber in result.subscribers:
        received: dict[str, list[dict[str, object]]] = defaultdict(list)
        for line in subscriber.lines:
            if line.get("kind") == "price_update":
                received[str(line["offer_id"])].append(line)
        offers = published.keys() | received.keys()
        matched = [_match(published.get(key, []), received.get(key, [])) for key in offers]
        gaps = announced_gaps(subscriber.lines, subscriber.resumes)  # after _match, which dates each update
        lost = told = unexpected = 0
        for missed, extra in matched:
            unexpected += extra
            for at in missed:
                if covered(at, gaps):
                    told += 1
                else:
                    lost += 1
        result.lost[subscriber.name] = lost
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
    for provider, since, until in failing(result.provider_events):
        for read in result.reads:
            at = float(read["t"])  # type: ignore[arg-type]
            flagged = provider in read["unwell"]  # type: ignore[operator]
            starting = any(w.gateway == read["gateway"] and w.start <= at <= w.healed for w in result.windows)
            if read["status"] == 200 and since + FLAG_DELAY_S <= at < until and not flagged and not starting:
                found.append({**read, "provider": provider})
    return found


def announced_gaps(
    lines: list[dict[str, object]], resumes: bool, kind: str = "price_update"
) -> list[tuple[float, float]]:
    """For each ``gap`` event, from the last event of ``kind`` before it to the gap's arrival; for
    a subscriber that does not resume, also from the last one before it lost its connection to
    the moment it is subscribed again. The window opens when that last event was written, where
    ``_match`` found it (``written``), not when it arrived: the events a gap stands for follow it
    on the bus, and a client that lags receives it seconds after they were written."""
    gaps: list[tuple[float, float]] = []
    last, away = 0.0, None
    for line in lines:
        at = float(line["t"])  # type: ignore[arg-type]
        if line.get("kind") == kind:
            last = float(line.get("written", at))  # type: ignore[arg-type]
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


def covered(at: float, gaps: list[tuple[float, float]]) -> bool:
    """Whether an update written at ``at`` falls in one of ``gaps`` (with ``GAP_SLACK_S``)."""
    return any(begin - GAP_SLACK_S <= at <= end + GAP_SLACK_S for begin, end in gaps)


def _match(published: list[tuple[str, str, float]], received: list[dict[str, object]]) -> tuple[list[float], int]:
    """The published updates (their times) missing from ``received``, walking both in order, and
    how many received ones match nothing published. Each received update matched is given the
    time it was written (``written``)."""
    missed: list[float] = []
    at = 0
    for old, new, written in published:
        line = received[at] if at < len(received) else None
        if line is not None and (_number(str(line["old"])), _number(str(line["new"]))) == (_number(old), _number(new)):
            line["written"] = written
            at += 1
        else:
            missed.append(written)
    return missed, len(received) - at


def _number(price: str) -> str:
    """One spelling for a price as the stream writes it (a JSON number) and the topic (a string)."""
    return "None" if price in ("None", "null") else str(Decimal(price).normalize())
