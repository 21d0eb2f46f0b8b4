"""The soak's accounting on its own, without the services: an update a subscriber missed counts
as told only when a gap its stream announced stands for it, by where the gap sits in the stream
and how many events it counted, not by when anything was written or arrived."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.soak_accounting import Result, Subscriber, Window, account
from gpubroker.core import events


def update(t: float, offer: str, old: str, new: str) -> dict[str, object]:
    return {"t": t, "kind": "price_update", "offer_id": offer, "old": old, "new": new}


def gap(t: float, dropped: int) -> dict[str, object]:
    return {"t": t, "kind": "gap", "dropped": dropped}


def accounted(published: list[tuple[str, str, str, float]], subscriber: Subscriber) -> Result:
    result = Result([], [], published, [subscriber])
    account(result)
    return result


def test_updates_dropped_behind_a_lagging_client_are_covered_by_the_gap_it_was_told_of() -> None:
    # written at 100, 101 and 102; the client, 10 s behind, receives the first at 110, then its
    # queue overflows: the next two are dropped and a gap is announced at 111
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0), ("c", "1", "2", 102.0), ("a", "2", "1", 120.0)]
    lines = [update(110.0, "a", "1", "2"), gap(111.0, 2), update(121.0, "a", "2", "1")]

    result = accounted(published, Subscriber("lagging", False, lines))

    assert result.told == {"lagging": 2} and result.lost == {"lagging": 0}


def test_updates_written_out_of_the_streams_order_are_covered_by_the_gap_between_their_neighbours() -> None:
    # a catch-up burst after the broker came back: partitions are consumed in turn, so "b" and
    # "c", written well before "a", reach the gateway after it and are the ones its queue drops
    published = [("b", "1", "2", 80.0), ("c", "1", "2", 81.0), ("a", "1", "2", 100.0), ("b", "2", "3", 130.0)]
    lines = [update(110.0, "a", "1", "2"), gap(111.0, 2), update(131.0, "b", "2", "3")]

    result = accounted(published, Subscriber("catching-up", False, lines))

    assert result.told == {"catching-up": 2} and result.lost == {"catching-up": 0}


def test_a_gap_stands_for_no_more_updates_than_it_counted() -> None:
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0), ("c", "1", "2", 102.0)]
    lines = [update(100.5, "a", "1", "2"), gap(103.0, 1)]

    result = accounted(published, Subscriber("short", False, lines))

    assert result.told == {"short": 1} and result.lost == {"short": 1}


def test_a_gap_does_not_cover_an_update_missed_before_one_received_ahead_of_it() -> None:
    # "a" went 1 -> 2 -> 3; the client got 2 -> 3 but never 1 -> 2, before any gap was announced
    published = [("a", "1", "2", 100.0), ("a", "2", "3", 101.0), ("b", "1", "2", 102.0)]
    lines = [update(101.5, "a", "2", "3"), gap(102.5, 5)]

    result = accounted(published, Subscriber("early", False, lines))

    assert result.lost == {"early": 1} and result.told == {"early": 1}


def test_an_update_missed_with_no_gap_announced_is_lost() -> None:
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0)]
    result = accounted(published, Subscriber("quiet", False, [update(100.5, "a", "1", "2")]))

    assert result.lost == {"quiet": 1} and result.told == {"quiet": 0}


def test_a_websocket_that_lost_its_connection_knows_it_missed_what_came_meanwhile() -> None:
    published = [("a", "1", "2", 100.0), ("b", "1", "2", 101.0), ("c", "1", "2", 102.0), ("a", "2", "3", 110.0)]
    lines = [
        update(100.5, "a", "1", "2"),
        {"t": 100.8, "kind": "disconnected"},
        {"t": 105.0, "kind": "connected"},
        update(110.5, "a", "2", "3"),
    ]

    away = accounted(published, Subscriber("websocket", False, lines, resumes=False))
    resumed = accounted(published, Subscriber("sse", False, lines))

    assert away.told == {"websocket": 2} and away.lost == {"websocket": 0}
    assert resumed.lost == {"sse": 2}, "a stream that resumes must receive what it missed"


def read(t: float, unwell: list[str]) -> dict[str, object]:
    return {"t": t, "status": 200, "gateway": "g0", "unwell": unwell}


def polled(provider: str, kind: str, at: float) -> tuple[events.ProviderEvent, float]:
    return events.ProviderEvent(provider, kind, datetime.fromtimestamp(at, UTC), {}), at


def test_a_failure_stamped_while_the_bus_was_away_is_owed_a_flag_only_once_it_is_back() -> None:
    # the worker stamps the failure at 105 while Kafka is stopped (100 to 130): the gateways hear
    # of it at 130, so the reads before then cannot flag it; those after must
    kafka = Window("Kafka stopped", 100.0, healed=130.0, end=160.0, bus_away=True)
    reported = [polled("runpod", "poll.failed", 105.0), polled("runpod", "poll.succeeded", 150.0)]
    reads = [read(110.0, []), read(129.0, []), read(134.0, ["runpod"]), read(140.0, [])]
    result = Result([kafka], reads, [], [], provider_events=reported)

    account(result)

    assert [r["t"] for r in result.unflagged] == [140.0]
