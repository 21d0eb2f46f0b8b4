"""Users' price alert rules, and which of them a price move sets off.

A rule fires when an offer matching its filters *crosses* its threshold: for ``below``, the
price goes from at least the threshold to under it; for ``above``, from at most the threshold
to over it. A price that stays under the threshold does not fire again on every poll; one that
goes back over and comes down again does.

Rules are kept sorted by threshold (per direction, and per instance or per GPU price), so a move
from ``old`` to ``new`` finds the rules it crosses by bisection, however many rules there are;
only those are then checked against their filters.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from gpubroker.core.offer import Offer
from gpubroker.gateway.catalog.filters import OfferFilters
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.rows import Row, Vocabulary

log = logging.getLogger(__name__)

Direction = Literal["below", "above"]


@dataclass(frozen=True)
class Rule:
    alert_id: int
    user_id: int
    filters: OfferFilters
    direction: Direction
    price: float
    per_gpu: bool


def compile_rule(
    alert_id: int,
    user_id: int,
    filters: dict[str, Any],
    direction: Direction,
    price: Decimal,
    per_gpu: bool,
    known_providers: Iterable[str],
) -> Rule | None:
    """The rule as stored, or None (logged) when its filters no longer make sense, for example
    a provider that has left the catalogue."""
    from gpubroker.gateway import params  # the API's parsing needs Django set up; rules are read then
    from gpubroker.gateway.errors import ApiError

    try:
        parsed = params.filters(params.OfferFilterParams.model_validate(filters), known_providers)
    except (ApiError, ValidationError) as exc:
        log.warning("alert %s is skipped: its filters are not valid now (%s)", alert_id, exc)
        return None
    return Rule(alert_id, user_id, parsed, direction, float(price), per_gpu)


class RuleBook:
    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._sorted: dict[tuple[Direction, bool], tuple[list[float], list[Rule]]] = {}
        groups: dict[tuple[Direction, bool], list[Rule]] = {}
        for rule in rules:
            groups.setdefault((rule.direction, rule.per_gpu), []).append(rule)
        for key, group in groups.items():
            group.sort(key=lambda rule: rule.price)
            self._sorted[key] = ([rule.price for rule in group], group)
        self.size = sum(len(group) for group in groups.values())

    def crossed(self, offer: Offer, old: Decimal, new: Decimal, vocabulary: Vocabulary) -> list[Rule]:
        """The rules ``offer`` sets off by moving from ``old`` to ``new`` (``offer`` is judged
        by the filters as it is now, at the new price)."""
        candidates: list[Rule] = []
        for (direction, per_gpu), (thresholds, rules) in self._sorted.items():
            divisor = offer.gpu_count if per_gpu and offer.gpu_count else 1
            before, after = float(old) / divisor, float(new) / divisor
            if direction == "below":  # after < threshold <= before
                span = bisect.bisect_right(thresholds, after), bisect.bisect_right(thresholds, before)
            else:  # before <= threshold < after
                span = bisect.bisect_left(thresholds, before), bisect.bisect_left(thresholds, after)
            candidates += rules[span[0] : span[1]]
        if not candidates:
            return []
        index = OfferIndex.of_one(offer, b"", Row.of(offer, vocabulary), vocabulary)
        return [rule for rule in candidates if rule.filters.mask(index)[0]]
