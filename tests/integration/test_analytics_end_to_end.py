"""Stream analytics end to end, on the real services and the running Flink cluster: a replayed
provider's price jump, published by its worker, reaches a gateway's WebSocket subscriber of
``price_alerts`` as a ``significant_change``, and the closed 1-minute window of those prices
reaches a ``market`` subscriber and ``GET /api/v2/analytics/market``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.flink.cluster import Flink, flink_cluster
from tests.integration import test_realtime_cluster as realtime
from tests.integration.processes import gateway_process, get_json, post_json, production_env, run_worker
from tests.integration.test_identity_cluster import api_key

pytestmark = [pytest.mark.integration, pytest.mark.flink]

replay = realtime.replay  # Vast.ai's recordings with a "repriced" scenario: on-demand offers 20% cheaper
LATENESS_S = 2


@pytest.fixture
def env(services: Services, tmp_path: Path) -> dict[str, str]:
    return production_env(services, tmp_path)


@pytest.fixture
def analytics(services: Services) -> Iterator[Flink]:
    """The analytics job on the product's topics, from their end (earlier tests' updates are not
    its business), with a short lateness so the test's minute closes soon after it ends."""
    flink = flink_cluster()
    job_id = flink.submit(
        f"--bootstrap={services.kafka_bootstrap}",
        f"--name=test-e2e-{uuid.uuid4().hex[:8]}",
        "--start=latest",
        f"--lateness-s={LATENESS_S}",
        "--idle-s=2",
    )
    try:
        yield flink
    finally:
        flink.cancel(job_id)


def test_a_price_jump_reaches_price_alert_and_market_subscribers(  # type: ignore[no-untyped-def]
    env, replay: ReplayServer, analytics: Flink
) -> None:
    assert run_worker(env, "vastai", replay).returncode == 0
    with gateway_process(env) as url:
        token = post_json(f"{url}/api/v2/auth/service-token", {}, {"X-API-Key": api_key(env, url, "pro")})
        headers = {"Authorization": f"Bearer {token['access_token']}", "X-API-Key": ""}

        async def scenario() -> None:
            alerts, market = realtime.Subscribers(), realtime.Subscribers()
            tasks = [
                await realtime.started(alerts.websocket(url, ["price_alerts"]), alerts),
                await realtime.started(market.websocket(url, ["market", "gpu:H100"], token["access_token"]), market),
            ]
            replay.scenario = "repriced"
            result = await asyncio.to_thread(run_worker, env, "vastai", replay)
            assert result.returncode == 0, result.stderr
            repriced_at = datetime.now(UTC)
            await realtime.until(lambda: any(e["event"] == "price_alert" for e in alerts.socket), timeout=60)
            alert = next(e["data"] for e in alerts.socket if e["event"] == "price_alert")
            assert alert["kind"] == "significant_change" and alert["provider"] == "vastai"
            assert alert["detail"]["change_pct"] == pytest.approx(-20, abs=0.01)
            assert alert["offer"]["id"] == alert["offer_id"]

            # The window of the repricing closes once event time passes its end (plus the
            # lateness): the next poll, a minute later, moves it on.
            minute_end = repriced_at.replace(second=0, microsecond=0).timestamp() + 60
            await asyncio.sleep(max(0.0, minute_end + LATENESS_S + 1 - time.time()))
            replay.scenario = "default"
            result = await asyncio.to_thread(run_worker, env, "vastai", replay)
            assert result.returncode == 0, result.stderr
            await realtime.until(lambda: any(e["event"] == "market" for e in market.socket), timeout=60)
            window = next(e["data"] for e in market.socket if e["event"] == "market")
            assert window["gpu_type"] == "H100" and window["count"] >= 1
            assert window["min_price_per_gpu"] <= window["mean_price_per_gpu"] <= window["max_price_per_gpu"]
            for task in tasks:
                task.cancel()

        asyncio.run(scenario())
        answer = get_json(f"{url}/api/v2/analytics/market?gpu=H100&window=1m", headers=headers)
        assert answer["items"] and answer["analytics"]["status"] == "flowing"
        assert get_json(f"{url}/health")["analytics"]["windows_received"] >= 1
