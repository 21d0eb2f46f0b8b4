"""The soak's accounting on its own, without the services: an update a subscriber missed counts
as told only when a gap its stream announced stands for it, whether or not the client lagged."""

from __future__ import annotations

from bench.soak_accounting import Result, Subscriber, account


def update(t: float, offer: str, old: str, new: str) -> dict[str, object]:
    return {"t": t, "kind": "price_update", "offer_id": offer, "old": old, "new": new}


def test_updates_dropped_behind_a_lagging_client_are_covered_by_the_gap_it_was_told_of() -> None:
    # written at 100, 101 and 102; the client, 10 s behind, receives the first at 110, then its
    # queue overflows: the next two are dropped and a gap is announced at 111
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0), ("c", "1", "2", 102.0), ("a", "2", "1", 120.0)]
    lines = [update(110.0, "a", "1", "2"), {"t": 111.0, "kind": "gap", "dropped": 2}, update(121.0, "a", "2", "1")]
    result = Result([], [], published, [Subscriber("lagging", False, lines)])

    account(result)

    assert result.told == {"lagging": 2} and result.lost == {"lagging": 0}


def test_an_update_missed_with_no_gap_announced_is_lost() -> None:
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0)]
    result = Result([], [], published, [Subscriber("quiet", False, [update(100.5, "a", "1", "2")])])

    account(result)

    assert result.lost == {"quiet": 1} and result.told == {"quiet": 0}
