"""Webhooks end to end on the real services: a user's alert rule fires in the gateway, the
notifier signs the delivery onto Kafka, the ``webhook_delivery`` DAG (``dag.test()``) POSTs it.

Receivers listen on 127.0.0.2, the one non-public address the delivery service is allowed
(``GPUBROKER_WEBHOOK_ALLOWED_NETWORKS``); the gateway accepted every loopback target when the
webhooks were registered. So ``localhost``, a name for 127.0.0.1, passes registration and is
refused at delivery, which is the check that counts."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gpubroker.core import events
from tests.conftest import Services
from tests.dags.conftest import Airflow, dag_env, gateway_env, popen_dag, publish, service_token
from tests.dags.receiver import Receiver, signature_valid
from tests.gateway.conftest import offer
from tests.integration.processes import BIN, free_port, gateway_process, get_json, post_json, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
PASSWORD = "webhook tests password"


@dataclass
class Setup:
    env: dict[str, str]
    port: int
    token: str
    user_token: str


@pytest.fixture(scope="module")
def setup(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    env = gateway_env(services, tmp_path_factory.mktemp("webhooks"), GPUBROKER_WEBHOOK_RETRY_INITIAL_S="1")
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    email = f"hooks-{secrets.token_hex(4)}@example.com"
    subprocess.run(
        [BIN / "gpubroker", "users", "create", email, "--plan", "enterprise"],
        input=PASSWORD + "\n", env=env, text=True, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Setup(env, free_port(), service_token(env), email)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-API-Key": ""}


def login(url: str, email: str) -> str:
    return str(post_json(f"{url}/api/v2/auth/login", {"email": email, "password": PASSWORD})["access_token"])


def remove(url: str, hook: dict[str, Any], token: str) -> None:
    """Delete a test's webhook, so that no later run delivers to its receiver, long gone."""
    request = urllib.request.Request(f"{url}/api/v2/webhooks/{hook['id']}", method="DELETE", headers=bearer(token))
    urllib.request.urlopen(request, timeout=10).close()


def start_group_at_the_end(services: Services, group: str) -> None:
    """A new delivery group for this test, starting after what earlier runs left on the topic."""

    async def commit_end() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap)
        await producer.start()
        try:
            numbers = await producer.partitions_for(events.WEBHOOKS)
        finally:
            await producer.stop()
        partitions = [TopicPartition(events.WEBHOOKS, number) for number in sorted(numbers)]
        consumer = AIOKafkaConsumer(bootstrap_servers=services.kafka_bootstrap, group_id=group)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
        finally:
            await consumer.stop()

    asyncio.run(commit_end())


def price_update(item: Any, old: str, new: str) -> bytes:
    at = datetime.now(UTC)
    return events.PriceUpdate(
        item.provider, item.id, item.gpu_type, item.region, Decimal(old), Decimal(new), at
    ).encode()


@pytest.fixture
def delivering(airflow: Airflow, services: Services, setup: Setup) -> Iterator[Any]:
    """The delivery DAG running for a while in its own consumer group; yields a function that
    waits for it to end and returns its output."""
    group = f"webhook-tests-{uuid.uuid4().hex[:8]}"
    start_group_at_the_end(services, group)
    env = dag_env(
        airflow, services, f"http://127.0.0.1:{setup.port}", setup.token,
        GPUBROKER_WEBHOOK_ALLOWED_NETWORKS='["127.0.0.2/32"]',
    )  # fmt: skip
    process = popen_dag(airflow, "webhook_delivery", env, {"run_for_s": 75, "group": group})

    def finished() -> str:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0 and '"state": "success"' in output, output[-6000:]
        return output

    try:
        yield finished
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def test_alerts_reach_receivers_signed_retried_and_never_at_a_private_name(
    setup: Setup, services: Services, delivering: Any
) -> None:
    with Receiver() as receiver, gateway_process(setup.env, setup.port) as url:
        token = login(url, setup.user_token)
        receiver.statuses["/a"] = [503, 503, 200]
        made = post_json(
            f"{url}/api/v2/webhooks", {"url": receiver.url("/a"), "events": ["price.alert"]}, bearer(token)
        )
        private = post_json(
            f"{url}/api/v2/webhooks", {"url": receiver.url("/b", "localhost"), "events": ["price.alert"]}, bearer(token)
        )
        item = offer("vastai", f"hook-{uuid.uuid4().hex[:8]}", "H100", "3")
        publish(services, (events.OFFERS, item.id, events.encode_offer(item)))
        wait_for(lambda: get_json(f"{url}/api/v2/providers?provider=vastai&limit=500")["total"])
        rule = {"filters": {"provider": ["vastai"], "gpu": ["H100"]}, "direction": "below", "price": "2.00"}
        post_json(f"{url}/api/v2/alerts", rule, bearer(token))
        time.sleep(6)  # every instance's notifier re-reads the rules within 5 s
        publish(services, (events.PRICE_UPDATES, item.provider, price_update(item, "3", "1.5")))

        attempts = wait_for(lambda: len(receiver.at("/a")) >= 3 and receiver.at("/a"), timeout=60)
        assert [r.status for r in attempts] == [503, 503, 200]
        assert len({r.delivery_id for r in attempts}) == 1, "every attempt is the same delivery"
        assert all(signature_valid(made["secret"], r) for r in attempts)
        body = orjson.loads(attempts[-1].body)
        assert body["type"] == "price.alert" and body["data"]["offer_id"] == item.id
        assert body["data"]["new_price"] == "1.5" and body["data"]["offer"]["price_per_hour"] == 3

        def listed(hook: dict[str, Any]) -> list[dict[str, Any]]:
            return get_json(f"{url}/api/v2/webhooks/{hook['id']}/deliveries", headers=bearer(token))  # type: ignore[no-any-return]

        [row] = wait_for(lambda: [d for d in listed(made) if d["status"] == "delivered"], timeout=30)
        assert [(a["number"], a["status_code"], a["outcome"]) for a in row["attempts"]] == [
            (1, 503, "retry"), (2, 503, "retry"), (3, 200, "delivered"),
        ]  # fmt: skip
        assert all(a["latency_ms"] is not None for a in row["attempts"])
        [refused] = wait_for(lambda: [d for d in listed(private) if d["status"] == "refused"], timeout=30)
        assert "non-public" in refused["attempts"][0]["error"] and not receiver.at("/b")
        for hook in (made, private):
            remove(url, hook, token)
        delivering()  # the run ends while the gateway it reports to is still up


def test_a_gateway_restart_loses_no_delivery_and_sends_none_twice(
    setup: Setup, services: Services, delivering: Any, tmp_path: Path
) -> None:
    updates = [offer("vastai", f"restart-{uuid.uuid4().hex[:8]}", "H100", "3") for _ in range(40)]
    with Receiver() as receiver:
        with gateway_process(setup.env, setup.port) as url:
            token = login(url, setup.user_token)
            hook = post_json(
                f"{url}/api/v2/webhooks", {"url": receiver.url("/c"), "events": ["price.change"]}, bearer(token)
            )
            time.sleep(6)  # the notifier has re-read the webhooks
            publish(services, *[(events.PRICE_UPDATES, u.provider, price_update(u, "3", "2")) for u in updates[:20]])
            time.sleep(1)  # some delivered, some in flight when the gateway stops
        with gateway_process(setup.env, setup.port) as url:
            publish(services, *[(events.PRICE_UPDATES, u.provider, price_update(u, "3", "2")) for u in updates[20:]])
            wanted = {u.id for u in updates}

            def ours() -> list[Any]:
                return [r for r in receiver.at("/c") if orjson.loads(r.body)["data"]["offer_id"] in wanted]

            wait_for(lambda: len({r.delivery_id for r in ours()}) >= len(wanted), timeout=90)
            received = ours()
            per_id = Counter(r.delivery_id for r in received)
            per_offer = Counter(orjson.loads(r.body)["data"]["offer_id"] for r in received)
            duplicates = sum(count - 1 for count in per_id.values())
            print(
                f"restart: {len(per_id)} deliveries, {duplicates} sent twice (same id) to a non-deduplicating receiver"
            )
            assert set(per_offer) == wanted, "no delivery lost"
            assert duplicates == 0, "the gateway's record keeps a delivery made twice from being sent twice"
            remove(url, hook, login(url, setup.user_token))
            delivering()
