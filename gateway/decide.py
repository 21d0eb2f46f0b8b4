"""``POST /providers/decide``: one recommended offer for an agent, with reasons it can act on.

The choice is the TOPSIS best among the offers that pass the filters; each reason places the
chosen offer among the candidates on one criterion ("cheaper than 85% of 120 candidates"), so a
caller can check the choice against its own priorities instead of trusting a score.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import Field

from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.query import OfferQuery, matching
from gpubroker.gateway.params import OfferFilterParams, WeightParams

MAX_ALTERNATIVES = 10


class DecideParams(OfferFilterParams, WeightParams):
    alternatives: Annotated[
        int, Field(ge=0, le=MAX_ALTERNATIVES, description="How many runners-up to return with the choice.")
    ] = 2


def decide(index: OfferIndex, query: OfferQuery, alternatives: int) -> dict[str, Any]:
    rows = matching(index, query)
    result = ranking.rank(index, rows, query.weights, 1 + alternatives)
    candidates = rows[ranking.rankable(index, rows)[0]]
    picks = [
        _pick(index, int(row), float(closeness), candidates, query.weights)
        for row, closeness in zip(result.rows, result.closeness, strict=True)
    ]
    if not picks:
        reason = (
            "no offer matches the filters"
            if not len(rows)
            else "no matching offer has both a price and datasheet figures"
        )
    return {
        "choice": picks[0] if picks else None,
        "alternatives": picks[1:],
        "matched": len(rows),
        "ranked": result.ranked,
        "excluded": result.excluded,
        "criteria": result.criteria,
        "reason": None if picks else reason,
    }


def _pick(
    index: OfferIndex, row: int, closeness: float, candidates: NDArray[np.intp], weights: dict[str, float]
) -> dict[str, Any]:
    reasons = []
    for name in sorted(weights, key=lambda criterion: -weights[criterion]):
        if weights[name] == 0:
            continue
        column = index.numbers[ranking.COLUMNS[name]]
        value, others = float(column[row]), column[candidates]
        better_than = others > value if not ranking.BENEFIT[name] else others < value
        share = float(better_than.sum()) / max(len(candidates) - 1, 1)
        reasons.append(
            {
                "criterion": name,
                "value": value,
                "beats": round(share, 4),
                "text": _text(name, value, share, len(candidates)),
            }
        )
    return {"offer": orjson.Fragment(index.rendered[row]), "closeness": round(closeness, 6), "reasons": reasons}


def _text(name: str, value: float, share: float, candidates: int) -> str:
    standing = f"{share:.0%} of the other {candidates - 1} candidates" if candidates > 1 else "the only candidate"
    if name == "price":
        return f"${value:.4g}/h: cheaper than {standing}" if candidates > 1 else f"${value:.4g}/h, {standing}"
    if name == "performance":
        return f"{value:,.0f} FP16 TFLOPS in all: more than {standing}" if candidates > 1 else f"{value:,.0f} TFLOPS"
    if name == "memory":
        return f"{value:,.0f} GB of GPU memory: more than {standing}" if candidates > 1 else f"{value:,.0f} GB"
    label = {1.0: "available now", 0.5: "limited availability"}.get(value, "not available now")
    return f"{label}: better placed than {standing}" if candidates > 1 else label
