"""What counts as a change of an offer's price: one rule for the worker and the gateway.

The worker decides from it which price updates it publishes (and the stream analytics compare
in percent); the gateway decides from it which changes it streams as ``price_update`` and which
prices it records in the price history. Both must agree, or a subscriber and a price alert would
disagree about the same poll.
"""

from __future__ import annotations

from decimal import Decimal


def price_changed(old: Decimal | None, new: Decimal | None) -> bool:
    """Whether a price moved between two observations of the same offer.

    Only a move between two known prices counts. A null price means the provider publishes no
    hourly price (never "free"), so a price appearing or disappearing has nothing to compare
    with, in dollars or in percent: it is a change of the offer, not a price movement.
    """
    return old is not None and new is not None and old != new
