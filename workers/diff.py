"""What changed between the last published snapshot of a provider and a new poll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpubroker.core.events import PriceUpdate
from gpubroker.core.offer import Offer
from gpubroker.core.price_changes import offer_price_changed


@dataclass
class SnapshotDiff:
    """A poll against the snapshot last published: what to upsert, tombstone and announce."""

    upserts: list[Offer] = field(default_factory=list)
    removed: list[Offer] = field(default_factory=list)
    price_updates: list[PriceUpdate] = field(default_factory=list)
    unchanged: int = 0

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removed)


def diff(previous: Mapping[str, Offer], current: Iterable[Offer], at: datetime) -> SnapshotDiff:
    """Offers are compared without ``last_updated``: a poll that only re-confirms an offer is
    not a change (the provider event carries the poll time instead)."""
    changes = SnapshotDiff()
    seen: set[str] = set()
    for offer in current:
        seen.add(offer.id)
        old = previous.get(offer.id)
        if old is None:
            changes.upserts.append(offer)
            continue
        if _content(old) == _content(offer):
            changes.unchanged += 1
            continue
        changes.upserts.append(offer)
        if offer_price_changed(old, offer):
            assert old.price_per_hour is not None and offer.price_per_hour is not None
            changes.price_updates.append(
                PriceUpdate(
                    offer.provider,
                    offer.id,
                    offer.gpu_type,
                    offer.region,
                    old.price_per_hour,
                    offer.price_per_hour,
                    at,
                    gpu_count=offer.gpu_count,
                    country=offer.country,
                )
            )
    changes.removed = [offer for offer_id, offer in previous.items() if offer_id not in seen]
    return changes


_UNTIMED = {"last_updated": None}


def _content(offer: Offer) -> dict[str, Any]:
    return offer.__dict__ | _UNTIMED  # a C-level merge: this runs for every offer of every poll
