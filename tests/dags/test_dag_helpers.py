"""What the DAGs do, without Airflow: the ECB document read into a rate table, the delivery
service's target check at delivery time (with a resolver the test controls: a name re-pointed at
127.0.0.1 is refused, a public one pinned), the plugin-health checks, the settings."""

from __future__ import annotations

from importlib.resources import files

import pytest

from gpubroker.core.fx import configured_rates
from gpubroker_dags import config, reference_rates
from gpubroker_dags.checks import worker_checks
from gpubroker_dags.delivery import DeliveryService, Options, PinnedResolver

RECORDED = files("gpubroker_dags.recordings.ecb").joinpath("eurofxref-daily.xml").read_bytes()


def test_the_recorded_reference_rates_become_dollars_per_unit() -> None:
    table = reference_rates.parse(RECORDED)
    assert table.as_of.isoformat() == "2026-12-01" and table.source == "ecb-eurofxref"
    bundled = configured_rates()
    assert set(table.usd_per_unit) == set(bundled.usd_per_unit)
    for code, rate in bundled.usd_per_unit.items():
        assert abs(table.usd_per_unit[code] - rate) / rate < 0.001, code


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"<html>maintenance</html>", "no <Cube time"),
        (b"not xml", "not XML"),
        (b"<Cube><Cube time='2026-12-01'><Cube currency='GBP' rate='0.8'/></Cube></Cube>", "no USD rate"),
        (b"<Cube><Cube time='2026-12-01'><Cube currency='USD' rate='-1'/></Cube></Cube>", "positive"),
    ],
)
def test_a_document_that_is_not_a_rate_table_is_refused(document: bytes, problem: str) -> None:
    with pytest.raises(reference_rates.SourceError, match=problem):
        reference_rates.parse(document)


class Names:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def __call__(self, host: str, port: int) -> list[str]:
        return self.answers[host]


async def test_a_name_pointing_at_loopback_is_refused_when_delivering_and_a_public_one_pinned() -> None:
    names = Names({"hooks.example.com": ["93.184.215.14"], "rebound.example.com": ["93.184.215.14"]})
    service = DeliveryService(None, Options("unused"), resolver=names)  # type: ignore[arg-type]
    assert await service._check("https://rebound.example.com/in", {}) is None
    names.answers["rebound.example.com"] = ["127.0.0.1"]  # re-pointed after it was registered
    refusal = await service._check("https://rebound.example.com/in", {})
    assert refusal is not None and "non-public" in refusal
    assert "rebound.example.com" not in service._pinned.pinned, "a refused name is never connected to"
    assert await service._check("https://hooks.example.com/in", {}) is None
    [pinned] = await service._pinned.resolve("hooks.example.com", 443)
    assert pinned["host"] == "93.184.215.14"
    with pytest.raises(OSError):
        await PinnedResolver().resolve("unchecked.example.com", 443)


def test_worker_checks_read_the_gateway_view_of_the_provider() -> None:
    row = {"status": "healthy", "last_error": None, "last_success_at": "t", "last_poll_at": "t", "stale": False}
    assert [c["ok"] for c in worker_checks({**row, "offers": 3})] == [True, True]
    failing = worker_checks({**row, "offers": 0, "last_error": "HTTP 503", "stale": True})
    assert [c["ok"] for c in failing] == [False, False] and "HTTP 503" in failing[0]["detail"]


def test_settings_name_what_is_missing_or_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPUBROKER_GATEWAY_URL", raising=False)
    with pytest.raises(config.MissingSetting, match="GPUBROKER_GATEWAY_URL"):
        config.gateway_url()
    monkeypatch.setenv("GPUBROKER_WEBHOOK_ALLOWED_NETWORKS", '["10.0.0.0/8", "nonsense"]')
    with pytest.raises(config.MissingSetting, match="CIDRs"):
        config.allowed_networks()
    monkeypatch.setenv("GPUBROKER_GATEWAY_INSTANCES", '["http://a:8000/", "http://b:8000"]')
    assert config.gateway_instances() == ["http://a:8000", "http://b:8000"]
