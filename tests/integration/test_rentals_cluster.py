"""Renting on the real Kafka, PostgreSQL, Redis and OpenBao, with two gateway processes and the
providers' worker processes, against emulated Hyperstack and TensorDock: one instance for a key
sent to both gateways at once, a worker and a gateway killed right after the provider created an
instance, refusals, an Enterprise user renting with their own key, a user's budget, rental events
written while Kafka is away (on the topic and the owner's event stream), and journey A.4 for an
agent on both providers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from gpubroker.core.plugins import load_providers
from gpubroker.core.rental_messages import RENTAL_EVENTS
from gpubroker.core.renting import InstanceState
from gpubroker.core.testkit.emulator import Cloud, Emulator
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker_hyperstack.emulator import HyperstackDialect
from gpubroker_tensordock.emulator import TensorDockDialect
from tests.conftest import Services
from tests.integration.kafka_reading import end_offsets, read_since
from tests.integration.processes import (
    BIN,
    free_port,
    logged_process,
    production_env,
    seed_credentials,
    services_cmd,
    wait_for,
)

pytestmark = pytest.mark.integration
DIALECTS = {"hyperstack": HyperstackDialect, "tensordock": TensorDockDialect}
PASSWORD = "rentals password, long enough"
RECONCILE_S = 2.0
TAIL = 6000
"""How much of a process's output a failed test shows (a Kafka outage logs a lot)."""


def call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextmanager
def gateway(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    with logged_process([str(BIN / "gpubroker"), "serve", "--port", str(port)], env, TAIL) as running:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(url), timeout=60)
        yield url, running


def _up(url: str) -> bool:
    try:
        return call(url + "/health")[0] == 200
    except OSError:
        return False


@pytest.fixture
def clouds(services: Services) -> Iterator[dict[str, ReplayServer]]:
    registry = load_providers(allow=list(DIALECTS))
    with ExitStack() as stack:
        servers = {}
        for name, dialect in DIALECTS.items():
            adapter = registry.get(name).adapter
            assert adapter.recordings is not None
            seed_credentials(services, registry.get(name))
            cloud = Cloud(granularity_s=adapter.billing_granularity_s, boot_s=0.1)
            servers[name] = stack.enter_context(ReplayServer(adapter.recordings, emulator=Emulator(dialect(), cloud)))
        yield servers


@pytest.fixture
def env(services: Services, tmp_path: Path, clouds: dict[str, ReplayServer]) -> dict[str, str]:
    return {
        **production_env(services, tmp_path),
        "GPUBROKER_PLUGINS": json.dumps(list(DIALECTS)),
        "GPUBROKER_PROVIDER_BASE_URLS": json.dumps({name: server.url for name, server in clouds.items()}),
        "GPUBROKER_RECONCILE_INTERVAL_S": str(RECONCILE_S),
        "GPUBROKER_RENTAL_WAIT_S": "30",
    }


def worker(env: dict[str, str], provider: str):  # type: ignore[no-untyped-def]
    return logged_process([str(BIN / "gpubroker"), "worker", "--provider", provider, "--metrics-port", "0"], env, TAIL)


def pro_user(env: dict[str, str], url: str, name: str, plan: str = "pro") -> dict[str, str]:
    """A new Pro (or ``plan``) user's API key header (made with the CLI, as an operator would)."""
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    subprocess.run(
        [BIN / "gpubroker", "users", "create", email, "--plan", plan],
        input=PASSWORD + "\n", env=env, text=True, check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    _, login = call(url + "/api/v2/auth/login", "POST", {"email": email, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    _, key = call(url + "/api/v2/auth/api-keys", "POST", {"name": "k"}, bearer)
    return {"X-API-Key": key["key"]}


def cheapest(url: str, headers: dict[str, str], provider: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        status, page = call(f"{url}/api/v2/providers?provider={provider}&sort=price&limit=1", headers=headers)
        return page["items"][0] if status == 200 and page["items"] else None

    return wait_for(found, timeout=90)


class EventStreamReader(threading.Thread):
    """Reads a Server-Sent Events stream in the background; ``events`` are the frames so far."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self._request = urllib.request.Request(url, headers=headers)
        self.events: list[dict[str, str]] = []
        self.opened = threading.Event()

    def run(self) -> None:
        with urllib.request.urlopen(self._request, timeout=60) as answer:
            self.opened.set()
            frame: dict[str, str] = {}
            for raw in answer:
                line = raw.decode().rstrip("\n")
                if not line:
                    if frame:
                        self.events.append(frame)
                    frame = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    frame[name] = value

    def rental_states(self, rental_id: str) -> list[str]:
        found = [json.loads(e["data"]) for e in list(self.events) if e.get("event") == "rental"]
        return [data["state"] for data in found if data["rental_id"] == rental_id]


def live(server: ReplayServer) -> list[Any]:
    assert server.emulator is not None
    return server.emulator.cloud.live()


def announced_states(services: Services, start: Any, rental_id: str, count: int) -> list[str]:
    """The states of ``rental_id``'s events on the topic since ``start``, once ``count`` are there,
    after checking their sequences only grow (in order, none twice)."""

    def events() -> list[dict[str, Any]] | None:
        records = asyncio.run(read_since(services.kafka_bootstrap, start))
        mine = [json.loads(value) for key, value in records if key == rental_id]
        return mine if len(mine) >= count else None

    found = wait_for(events, timeout=60)
    sequences = [event["sequence"] for event in found]
    assert sequences == sorted(set(sequences)), f"out of order or repeated: {sequences}"
    return [event["state"] for event in found]


def test_one_key_rents_once_across_two_gateways_and_a_crash_is_reconciled(
    env: dict[str, str], clouds: dict[str, ReplayServer], services: Services
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    with worker(env, "hyperstack"), worker(env, "tensordock"), gateway(env) as (first, _), gateway(env) as (second, _):
        user = pro_user(env, first, "renter")
        offer = cheapest(first, user, "hyperstack")
        cheapest(second, user, "hyperstack")
        start = asyncio.run(end_offsets(services.kafka_bootstrap, RENTAL_EVENTS))
        headers = {**user, "Idempotency-Key": "once"}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda url: call(url + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, headers),
                    [first, second],
                )
            )
        assert sorted(status for status, _ in answers) == [200, 201], answers
        assert len({body["id"] for _, body in answers}) == 1
        assert len(live(clouds["hyperstack"])) == 1, "two gateways, one key: one instance"
        rental_id = answers[0][1]["id"]
        status, ended = call(f"{second}/api/v2/rentals/{rental_id}", "DELETE", headers=user)
        assert status == 200 and ended["state"] == "terminated" and ended["final_cost"] is not None
        assert live(clouds["hyperstack"]) == []
        expected = ["requested", "provisioning", "running", "terminating", "terminated"]
        assert announced_states(services, start, rental_id, 5) == expected, "both gateways relay; one order"

        stranger = pro_user(env, second, "stranger")
        assert call(f"{first}/api/v2/rentals/{rental_id}", headers=stranger)[0] == 404

        cloud = clouds["hyperstack"].emulator.cloud  # type: ignore[union-attr]
        cloud.faults.out_of_capacity = True
        status, refused = call(first + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 409 and "hyperstack" in refused["detail"][0]["message"]
        cloud.faults.out_of_capacity, cloud.faults.insufficient_balance = False, True
        status, refused = call(first + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 402 and "Insufficient balance" in refused["detail"][0]["message"]
        cloud.faults.insufficient_balance, cloud.faults.auth_failure = False, True
        status, refused = call(first + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        message = refused["detail"][0]["message"]
        assert status == 502 and "hyperstack" in message and "(auth)" in message and "Invalid API key" in message
        _, latest = call(first + "/api/v2/rentals", headers=user)
        assert latest[0]["state"] == "failed" and latest[0]["failure"]["kind"] == "auth", latest[0]
        assert live(clouds["hyperstack"]) == [], "refused credentials: nothing was created"
        cloud.faults.auth_failure = False


def test_a_worker_and_gateway_killed_after_the_provider_created_the_instance(
    env: dict[str, str], clouds: dict[str, ReplayServer]
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    server = clouds["tensordock"]
    cloud = server.emulator.cloud  # type: ignore[union-attr]
    with gateway(env) as (survivor, _), worker(env, "hyperstack"):
        with worker(env, "tensordock") as doomed_worker, gateway(env) as (doomed, doomed_gateway):
            user = pro_user(env, doomed, "crash")
            offer = cheapest(doomed, user, "tensordock")
            cloud.faults.timeout_after_create = True  # created, and the answer never leaves the provider
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pending = pool.submit(
                    call, doomed + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user
                )
                wait_for(lambda: live(server), timeout=60)
                os.killpg(doomed_worker.pid, signal.SIGKILL)  # the process and any it started
                os.killpg(doomed_gateway.pid, signal.SIGKILL)
                with pytest.raises(OSError):
                    pending.result(timeout=60)
        cloud.faults.timeout_after_create = False
        (instance,) = live(server)
        killed_at = time.monotonic()
        with worker(env, "tensordock"):

            def adopted() -> dict[str, Any] | None:
                _, rentals = call(survivor + "/api/v2/rentals", headers=user)
                running = [r for r in rentals if r["state"] == "running"]
                return running[0] if running else None

            rental = wait_for(adopted, timeout=90)
            assert rental["instance_id"] == instance.instance_id and len(live(server)) == 1
            print(f"adopted {time.monotonic() - killed_at:.1f}s after the kill (interval {RECONCILE_S}s)")
            status, ended = call(f"{survivor}/api/v2/rentals/{rental['id']}", "DELETE", headers=user)
            assert status == 200 and ended["state"] == "terminated"
            assert instance.state(cloud.clock()) is InstanceState.TERMINATED


def test_an_enterprise_user_rents_on_their_own_account_with_their_own_key(
    env: dict[str, str], clouds: dict[str, ReplayServer]
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    emulator = clouds["tensordock"].emulator
    assert emulator is not None

    def keys(method: str, path: str) -> list[str]:
        return [
            r.headers.get("Authorization", "") for r, _ in emulator.answered if (r.method, r.path) == (method, path)
        ]

    with worker(env, "tensordock"), gateway(env) as (url, _):
        user = pro_user(env, url, "own-key", plan="enterprise")
        own = f"Bearer own-{secrets.token_hex(8)}"
        integration = {"provider": "tensordock", "credentials": {"api_key": own.removeprefix("Bearer ")}}
        assert call(url + "/api/v2/providers/config/integrations", "POST", integration, user)[0] == 201
        offer = cheapest(url, user, "tensordock")
        status, rental = call(url + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 201 and rental["credentials"] == "user", rental
        status, ended = call(f"{url}/api/v2/rentals/{rental['id']}", "DELETE", headers=user)
        assert status == 200 and ended["state"] == "terminated"
        assert keys("POST", "/api/v2/instances") == [own], "the provider saw the user's key, not the platform's"
        assert own in keys("DELETE", f"/api/v2/instances/{rental['instance_id']}")
        listed = len(keys("GET", "/api/v2/instances"))
        wait_for(lambda: keys("GET", "/api/v2/instances")[listed:].count(own) > 0, timeout=10 * RECONCILE_S)
        assert live(clouds["tensordock"]) == []


def test_a_users_budget_refuses_a_provision_and_ends_what_runs_past_it(
    env: dict[str, str], clouds: dict[str, ReplayServer]
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    budget = "/api/v2/rentals/budget"
    with worker(env, "tensordock"), gateway(env) as (url, _):
        user = pro_user(env, url, "budget")
        offer = cheapest(url, user, "tensordock")
        price = float(offer["price_per_hour"])
        assert call(url + budget, "PUT", {"budget_per_hour": round(price * 1.5, 6)}, user)[0] == 200
        status, rental = call(url + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 201, rental
        status, refused = call(url + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 402 and "over your rental budget" in refused["detail"][0]["message"], refused
        assert len(live(clouds["tensordock"])) == 1, "the refused one was never asked of the provider"
        assert call(url + budget, "PUT", {"budget_per_hour": round(price / 2, 6)}, user)[0] == 200

        def ended() -> bool:
            return call(f"{url}/api/v2/rentals/{rental['id']}", headers=user)[1]["state"] == "terminated"

        wait_for(ended, timeout=10 * RECONCILE_S)
        assert live(clouds["tensordock"]) == []


def test_events_written_while_kafka_is_away_arrive_once_and_in_order_when_it_returns(
    env: dict[str, str], clouds: dict[str, ReplayServer], services: Services
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    quick = {**env, "GPUBROKER_RENTAL_WAIT_S": "5"}
    with worker(quick, "tensordock"), gateway(quick) as (url, _):
        user = pro_user(quick, url, "outbox")
        offer = cheapest(url, user, "tensordock")
        stream = EventStreamReader(url + "/api/v2/providers/stream?provider=hyperstack", user)
        stream.start()
        assert stream.opened.wait(30), "the event stream did not open"
        start = asyncio.run(end_offsets(services.kafka_bootstrap, RENTAL_EVENTS))
        status, rental = call(url + "/api/v2/rentals/provision", "POST", {"offer_id": offer["id"]}, user)
        assert status == 201, rental

        def state() -> str:
            return str(call(f"{url}/api/v2/rentals/{rental['id']}", headers=user)[1]["state"])

        services_cmd("stop", "kafka")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            try:  # the end is recorded with its event; asking the worker waits for Kafka
                ending = pool.submit(call, f"{url}/api/v2/rentals/{rental['id']}", "DELETE", None, user)
                wait_for(lambda: state() == "terminating", timeout=30)
                time.sleep(3)  # the relay tries, and fails, meanwhile
            finally:
                services_cmd("start", "kafka")
            with contextlib.suppress(OSError):
                ending.result(timeout=90)
        wait_for(lambda: state() == "terminated", timeout=120)
        expected = ["requested", "provisioning", "running", "terminating", "terminated"]
        announced_states(services, start, rental["id"], len(expected))
        time.sleep(2)  # a repeat would land now
        assert announced_states(services, start, rental["id"], len(expected)) == expected, "each once, in order"
        assert live(clouds["tensordock"]) == []
        wait_for(lambda: stream.rental_states(rental["id"]) == expected or None, timeout=30)
        time.sleep(1)
        assert stream.rental_states(rental["id"]) == expected, "the owner's stream: once each, in order"


@pytest.mark.parametrize("provider", sorted(DIALECTS))
def test_an_agent_rents_scales_and_ends_on_the_real_services(
    env: dict[str, str], clouds: dict[str, ReplayServer], provider: str
) -> None:
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    with worker(env, provider), gateway(env) as (url, _):
        key = pro_user(env, url, f"agent-{provider}")
        _, token = call(url + "/api/v2/auth/service-token", "POST", {}, key)
        agent = {"Authorization": f"Bearer {token['access_token']}"}
        status, registered = call(
            url + "/api/v2/agents/register", "POST",
            {"name": "a4", "budget_per_hour": "50", "budget_total": "100", "allowed_providers": [provider]}, agent,
        )  # fmt: skip
        assert status == 201, registered
        cheapest(url, key, provider)

        def act(kind: str, **params: Any) -> dict[str, Any]:
            status, action = call(url + "/api/v2/agents/actions", "POST", {"type": kind, "params": params}, agent)
            assert status == 202, action

            def done() -> dict[str, Any] | None:
                _, now = call(f"{url}/api/v2/agents/actions/{action['id']}", headers=agent)
                return now if now["status"] in ("succeeded", "failed") else None

            finished = wait_for(done, timeout=60)
            assert finished["status"] == "succeeded", finished
            return finished["result"]  # type: ignore[no-any-return]

        assert act("decide")["matched"] > 0
        offer_id = act("query")["items"][0]["id"]
        rental = act("provision", offer_id=offer_id)["rental"]
        assert rental["state"] == "running"
        scaled = act("scale", rental_id=rental["id"], gpu_count=rental["gpu_count"] + 1)["rental"]
        assert scaled["gpu_count"] == rental["gpu_count"] + 1
        ended = act("terminate", rental_id=rental["id"])["rental"]
        assert ended["state"] == "terminated" and ended["final_cost"] is not None
        assert live(clouds[provider]) == []
