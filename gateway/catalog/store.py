"""The merged catalogue, rebuilt from the bus: offers by id and each provider's state.

Applying the same records twice leaves the same state (the bus delivers at least once), and the
``fingerprint`` depends only on the content, so two gateway instances that consumed the same
records agree on it and can share cache entries. The content includes which providers' data is
stale, which changes with time alone: while no record comes (a worker stopped, the bus away) a
provider's data turns stale all the same, and the fingerprint changes at that moment, so no
cached answer keeps calling it fresh.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from gpubroker.core.events import PROVIDER_DEGRADED, PROVIDER_RECOVERED, ProviderEvent
from gpubroker.core.offer import Offer, Source
from gpubroker.gateway.catalog.index import Columns, OfferIndex
from gpubroker.gateway.catalog.rows import Row, Vocabulary

HealthStatus = Literal["healthy", "degraded", "unhealthy"]

STALE_AFTER_POLLS = 3
DEFAULT_POLL_INTERVAL_S = 60.0


@dataclass
class ProviderState:
    name: str
    source: Source | None = None
    data_as_of: datetime | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    offers: int = 0
    checks_failing: str | None = None
    """Why the plugin-health checks have failed run after run (``provider.degraded``), until
    they pass again (``provider.recovered``)."""

    def apply(self, event: ProviderEvent) -> None:
        data = event.data
        if event.event_type in (PROVIDER_DEGRADED, PROVIDER_RECOVERED):  # a verdict, not a poll
            degraded = event.event_type == PROVIDER_DEGRADED
            self.checks_failing = str(data.get("reason") or "plugin-health checks failed") if degraded else None
            return
        self.last_poll_at = event.at
        if "poll_interval_s" in data:
            self.poll_interval_s = float(data["poll_interval_s"])
        if event.event_type == "poll.succeeded":
            self.last_success_at = event.at
            self.last_error = None
            self.source = data.get("source", "live")
            self.data_as_of = datetime.fromisoformat(data["data_as_of"]) if data.get("data_as_of") else event.at
            self.offers = int(data.get("offers", 0))
        elif event.event_type == "poll.failed":
            self.last_error = str(data.get("reason") or data.get("error_type") or "poll failed")

    @property
    def status(self) -> HealthStatus:
        if self.last_success_at is None:
            return "unhealthy"
        if self.last_error is not None or self.source == "snapshot" or self.checks_failing is not None:
            return "degraded"
        return "healthy"

    def stale(self, now: datetime) -> bool:
        """Live data older than a few poll intervals, or any snapshot data, is stale."""
        return now.timestamp() > self.stale_after()

    def stale_after(self) -> float:
        """When (epoch seconds) this provider's data is stale past; -inf when it already is, for
        good (snapshot data, or none)."""
        if self.source == "snapshot" or self.data_as_of is None:
            return -math.inf
        return (self.data_as_of + timedelta(seconds=self.poll_interval_s * STALE_AFTER_POLLS)).timestamp()

    def to_json(self, now: datetime) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "data_as_of": _iso(self.data_as_of),
            "last_poll_at": _iso(self.last_poll_at),
            "last_success_at": _iso(self.last_success_at),
            "stale": self.stale(now),
            "offers": self.offers,
            "last_error": self.last_error,
            "checks_failing": self.checks_failing,
        }

    def warning(self) -> str | None:
        if self.source == "snapshot":
            return (
                f"{self.name}: serving the plugin's bundled snapshot captured {_iso(self.data_as_of)}, "
                "not live data (the provider could not be reached)"
            )
        if self.last_error is not None:
            since = _iso(self.last_success_at) if self.last_success_at else "never"
            return f"{self.name}: provider unhealthy ({self.last_error}); serving data last refreshed {since}"
        if self.checks_failing is not None:
            return f"{self.name}: plugin-health checks failing ({self.checks_failing})"
        if self.last_success_at is None:
            return f"{self.name}: no poll of it has been reported; serving its offers of unknown age"
        return None


@dataclass
class Catalog:
    """Offers by id, each with its JSON and its row computed once (and kept in the query
    columns), and every provider's state. ``version`` counts changes, so a reader knows when its
    snapshot is out of date."""

    offers: dict[str, Offer] = field(default_factory=dict)
    providers: dict[str, ProviderState] = field(default_factory=dict)
    rendered: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    version: int = 0
    _columns: Columns = field(init=False)
    _offer_digest: int = 0
    _offer_hashes: dict[str, int] = field(default_factory=dict)
    _provider_hashes: dict[str, int] = field(default_factory=dict)
    _offers_per_provider: Counter[str] = field(default_factory=Counter)
    _fingerprint: str = ""
    _fingerprint_version: int = -1
    _turns_stale_at: float = math.inf
    """The next moment a provider's data turns stale with no record to say so."""

    def __post_init__(self) -> None:
        self._columns = Columns(self.vocabulary)

    def apply_offer(self, offer_id: str, offer: Offer | None) -> Offer | None:
        """Upsert (or delete, for ``None``) an offer; returns the offer it replaced."""
        row = None if offer is None else Row.of(offer, self.vocabulary)  # may refuse the offer: before any change
        previous = self.offers.pop(offer_id, None)
        self._offer_digest ^= self._offer_hashes.pop(offer_id, 0)
        self.rendered.pop(offer_id, None)
        self.rows.pop(offer_id, None)
        if previous is not None:
            self._offers_per_provider[previous.provider] -= 1
        if offer is not None and row is not None:
            rendered = offer.to_bytes()
            self.offers[offer_id] = offer
            self.rendered[offer_id] = rendered
            self.rows[offer_id] = row
            self._columns.put(offer_id, offer, rendered, row)
            self._offers_per_provider[offer.provider] += 1
            digest = _hash(rendered)
            self._offer_hashes[offer_id] = digest
            self._offer_digest ^= digest
        else:
            self._columns.remove(offer_id)
        self.version += 1
        return previous

    def build_index(self) -> OfferIndex:
        return self._columns.snapshot(self.fingerprint)

    def apply_event(self, event: ProviderEvent) -> ProviderState:
        state = self.providers.setdefault(event.provider, ProviderState(event.provider))
        state.apply(event)
        self._provider_hashes[event.provider] = _hash(repr(state).encode())
        self.version += 1  # the fingerprint, recomputed, also finds when it next turns stale
        return state

    def freshness(self, now: datetime) -> dict[str, list[Any]]:
        """Every provider's state and the warnings a reader of cached or stale data must see; a
        provider whose offers are in but whose worker's reports are not (yet: an instance still
        reading the topics) is listed too, its data stale, of unknown age."""
        states = [self.providers.get(name) or ProviderState(name) for name in sorted(self.provider_names())]
        return {
            "providers": [state.to_json(now) for state in states],
            "warnings": [warning for state in states if (warning := state.warning())],
        }

    def provider_names(self) -> set[str]:
        """Providers that reported or have offers (offers may outlive their provider's events)."""
        return self.providers.keys() | {name for name, count in self._offers_per_provider.items() if count > 0}

    @property
    def fingerprint(self) -> str:
        """Asked on every fast-path hit, so computed once per change (a provider's data turning
        stale is one)."""
        now = time.time()
        if now > self._turns_stale_at:
            self.version += 1
        if self._fingerprint_version != self.version:
            providers = 0
            for name, digest in self._provider_hashes.items():
                providers ^= digest ^ (
                    _hash(b"stale:" + name.encode()) if self.providers[name].stale_after() < now else 0
                )
            self._fingerprint = f"{self._offer_digest:016x}{providers:016x}"
            self._fingerprint_version = self.version
            self._turns_stale_at = min(
                (t for p in self.providers.values() if (t := p.stale_after()) >= now), default=math.inf
            )
        return self._fingerprint


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
