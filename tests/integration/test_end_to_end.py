"""Replay server -> worker process -> Kafka -> gateway process -> HTTP, on the real services."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import hvac
import psycopg
import pytest
import redis

from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.testkit.replay import Faults, ReplayServer
from tests.conftest import Services
from tests.integration.processes import gateway_process, get_json, production_env, run_worker, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def env(services: Services, tmp_path: Path) -> dict[str, str]:
    return production_env(services, tmp_path)


@pytest.fixture
def vast_key(services: Services) -> str:
    key = "vast-" + secrets.token_hex(12)
    client = hvac.Client(url=services.vault_addr, token=services.vault_token)
    client.secrets.kv.v2.create_or_update_secret(
        path="gpubroker/providers/vastai", secret={"api_key": key}, mount_point="secret"
    )
    return key


@pytest.fixture
def replay(vastai: RegisteredProvider) -> Iterator[ReplayServer]:
    assert vastai.adapter.recordings is not None
    with ReplayServer(vastai.adapter.recordings) as server:
        yield server


@pytest.fixture
def gateway(env: dict[str, str]) -> Iterator[str]:
    with gateway_process(env) as url:
        yield url


def expected_rtx4090(replay: ReplayServer) -> dict[str, Decimal]:
    [exchange] = [x for x in replay.recordings.exchanges() if x.match_json == {"type": "on-demand"}]
    offers = json.loads(exchange.response.body)["offers"]
    return {
        str(o["id"]): Decimal(str(o["dph_total"])).quantize(Decimal("0.000001"))
        for o in offers
        if o["gpu_name"] == "RTX 4090"
    }


def test_offers_flow_from_provider_to_http(env, replay, vast_key, gateway, services) -> None:  # type: ignore[no-untyped-def]
    result = run_worker(env, "vastai", replay)
    assert result.returncode == 0, result.stderr
    assert replay.requests[0].headers["Authorization"] == f"Bearer {vast_key}"
    assert vast_key not in result.stderr + result.stdout

    expected = expected_rtx4090(replay)
    assert len(expected) >= 3

    def served() -> dict | None:  # type: ignore[type-arg]
        body = get_json(gateway + "/api/v2/providers?gpu=RTX%204090&provider=vastai&limit=500")
        vast = next((p for p in body["providers"] if p["name"] == "vastai"), {})
        # earlier runs may have left older events on the topic: wait for this poll's
        return body if body["total"] >= len(expected) and vast.get("status") == "healthy" else None

    body = wait_for(served)
    got = {item["provider_offer_id"]: Decimal(str(item["price_per_hour"])) for item in body["items"]}
    assert got == expected
    assert all(item["gpu_type"] == "RTX 4090" and item["source"] == "live" for item in body["items"])
    prices = [item["price_per_hour"] for item in body["items"]]
    assert prices == sorted(prices)
    vast = next(p for p in body["providers"] if p["name"] == "vastai")
    assert vast["status"] == "healthy" and vast["source"] == "live"

    health = get_json(gateway + "/health")
    assert any(p["name"] == "vastai" for p in health["providers"]) and health["bus"] == "kafka"

    with psycopg.connect(services.database_url) as conn:
        status = "select status from gateway_providerstatus where name = 'vastai'"
        wait_for(lambda: conn.execute(status).fetchone() == ("healthy",))
        assert conn.execute("select count(*) from gateway_priceobservation where provider = 'vastai'").fetchone()[0] > 0
    assert redis.Redis.from_url(services.redis_url).keys("gpubroker:cache:v1:*:offers:*")

    metrics = urllib.request.urlopen(gateway + "/metrics", timeout=5).read().decode()
    assert "gpubroker_http_requests_total" in metrics


def test_garbage_from_the_provider_keeps_the_last_good_data(env, replay, gateway) -> None:  # type: ignore[no-untyped-def]
    assert run_worker(env, "vastai", replay).returncode == 0
    expected = expected_rtx4090(replay)
    wait_for(lambda: get_json(gateway + "/api/v2/providers?gpu=RTX%204090&provider=vastai")["total"] >= len(expected))

    replay.faults = Faults(malformed=True)
    result = run_worker(env, "vastai", replay)
    assert result.returncode == 1
    assert "poll failed (ProviderBadResponse)" in result.stderr and "malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr

    def reported() -> dict | None:  # type: ignore[type-arg]
        state = next(p for p in get_json(gateway + "/health")["providers"] if p["name"] == "vastai")
        return state if state["last_error"] else None

    state = wait_for(reported)
    assert state["status"] == "degraded" and "malformed JSON" in state["last_error"]
    body = get_json(gateway + "/api/v2/providers?gpu=RTX%204090&provider=vastai")
    assert body["total"] == len(expected)
    assert any("malformed JSON" in warning for warning in body["warnings"])
