"""What counts as a change of an offer's price: one rule for the worker and the gateway.

The worker decides from it which price updates it publishes (which the stream analytics compare
in percent and users' alerts fire on); the gateway decides from it which changes it streams as
``price_update`` and which prices it records in the price history. Both must agree, or a
subscriber and a price alert would disagree about the same poll.
"""

from __future__ import annotations

from decimal import Decimal

from gpubroker.core.offer import Offer


def price_changed(old: Decimal | None, new: Decimal | None) -> bool:
    """Whether a price moved between two observations of the same offer.

    Only a move between two known prices counts. A null price means the provider publishes no
    hourly price (never "free"), so a price appearing or disappearing has nothing to compare
    with, in dollars or in percent: it is a change of the offer, not a price movement.
    """
    return old is not None and new is not None and old != new


def offer_price_changed(old: Offer, new: Offer) -> bool:
    """Whether an offer's price moved between two versions, as news: both prices known and
    trusted. A quarantined price (``Offer.quarantined``) is never announced, so a unit mistake in
    a plugin fires no alert and leaves no mark in the price history."""
    return old.quarantined is None and new.quarantined is None and price_changed(old.price_per_hour, new.price_per_hour)
