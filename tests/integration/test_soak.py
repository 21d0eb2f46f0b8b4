"""The soak's short variant: every provider's worker in two pools, two gateways behind a load
balancer and clients in processes of their own on the real services, some providers answering
5xx bursts, slowly and with malformed records all along, while a worker is SIGKILLed, Redis
stopped and a gateway sent SIGTERM; nothing published is lost to any SSE or WebSocket subscriber
without being told, every malformed record is rejected and none published, a provider whose polls
fail is flagged in every read, every alert rule fires once per crossing, every webhook delivery is
delivered, failed or dead-lettered with its reason, and no read fails other than with a
documented 429 or 503."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import SHORT, Soak
from bench.soak_accounting import failing

pytestmark = pytest.mark.integration


@pytest.mark.timeout(480)
def test_nothing_is_lost_and_nothing_fails_undocumented_while_things_break(services: object, tmp_path: Path) -> None:
    result = Soak(SHORT, poll_s=10, baseline_s=25, scratch=tmp_path).run()

    assert len(result.published) > 500, "prices moved on every poll of most providers"
    assert not result.undocumented, result.undocumented[:5]
    assert result.lost == dict.fromkeys(result.lost, 0), result.lost
    for subscriber in result.subscribers:
        received = sum(1 for line in subscriber.lines if line.get("kind") == "price_update")
        assert received > len(result.published) / 2, f"{subscriber.name} received {received}"
    # SSE resumes, so only the subscriber that stays on the stopped gateway is told of a gap; a
    # WebSocket that loses its connection knows it was away
    told = {name for name, count in result.told.items() if count}
    assert told <= {"sse-pinned-1", "ws-pinned-0", "ws-balanced"}, result.told

    assert all(sent > 0 for sent in result.malformed_served.values()), result.malformed_served
    assert result.rejected == result.malformed_served
    assert not result.leaked, result.leaked
    assert "runpod" in {provider for provider, *_ in failing(result.provider_events)}, "its 5xx burst failed a poll"
    assert not result.unflagged, result.unflagged[:5]

    alerts = result.alerts
    assert alerts.expected > 5 and alerts.received > 0, alerts
    assert not alerts.problems, alerts.problems
    assert alerts.outcomes["ok"].get("delivered", 0) > 0, alerts.outcomes
    assert set(alerts.outcomes["gone"]) == {"failed: 410"}, alerts.outcomes
    assert set(alerts.outcomes["down"]) == {"dead-lettered: 503"}, alerts.outcomes
