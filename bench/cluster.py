"""The production deployment on this machine's real services, for the benchmarks that break it:
the gateway and worker processes, stopping and starting a service, users with API keys, and
reading back what was written to the topics.

The services are the ones ``scripts/services up`` started; their addresses come from the
environment (``eval "$(scripts/services env)"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.servers import ROOT, free_port, stop

BIN = Path(sys.executable).parent
SERVICES = ROOT / "scripts" / "services"
NEEDED = ("KAFKA_BOOTSTRAP", "REDIS_URL", "DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN")
PASSWORD = "a long enough bench password"


def missing_services() -> list[str]:
    """The services' variables that are not set (empty when ``scripts/services env`` was read)."""
    return [f"GPUBROKER_{name}" for name in NEEDED if not os.environ.get(f"GPUBROKER_{name}")]


def production_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """Production mode on the services of this shell's environment, its files under ``data_dir``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GPUBROKER_MODE": "production",
        "GPUBROKER_SECRET_KEY": secrets.token_hex(16),
        "GPUBROKER_DATA_DIR": str(data_dir),
        "GPUBROKER_ADMIN_API_KEY": secrets.token_urlsafe(24),
        "GPUBROKER_LOG_LEVEL": "WARNING",
        **extra,
    }


def services(*args: str) -> None:
    """``scripts/services ARGS`` (``stop kafka``, ``start redis``, ...), failing loudly."""
    subprocess.run([SERVICES, *args], check=True, timeout=300, capture_output=True)


class Process:
    """A product process (``gpubroker serve``, ``gpubroker worker``) that a benchmark stops,
    kills and starts again, its output appended to ``log``."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def signal(self, number: signal.Signals, *, group: bool = True) -> None:
        """Send ``number`` to the process's group (a server's workers too), or to the process
        alone, as Kubernetes signals a container's main process."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.process.pid, number)
            else:
                self.process.send_signal(number)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


class Gateway(Process):
    """``gpubroker serve`` on a port of its own, which it keeps across restarts."""

    def __init__(self, name: str, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(name, [str(BIN / "gpubroker"), "serve", "--port", str(self.port)], env, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f}s; see {self.log}")


def api_key(env: Mapping[str, str], url: str, plan: str) -> str:
    """A new user of ``plan`` (made with the operator's CLI) and an API key of theirs."""
    email = f"bench-{plan}-{secrets.token_hex(4)}@example.com"
    subprocess.run(
        [BIN / "gpubroker", "users", "create", email, "--plan", plan],
        input=PASSWORD + "\n", env=dict(env), text=True, check=True, capture_output=True,
    )  # fmt: skip

    token = call_json(url + "/api/v2/auth/login", {"email": email, "password": PASSWORD})["access_token"]
    return call_json(url + "/api/v2/auth/api-keys", {"name": "bench"}, {"Authorization": f"Bearer {token}"})["key"]  # type: ignore[no-any-return]


RETRIED = frozenset({429, 503})
"""The documented answers of a busy or degraded moment, which a client waits out (``Retry-After``)."""


def call_json(
    url: str,
    body: object = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    wait_s: float = 60,
) -> Any:
    """One JSON request, trying again on a 429 or 503 for up to ``wait_s``, as a client should."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})}, method=method)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRIED or time.monotonic() > deadline:
                raise
            time.sleep(min(float(exc.headers.get("Retry-After") or 1), 5))


async def topic_ends(bootstrap: str, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
    """Where each partition of ``topics`` ends now: read from here to see what is written next."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # the client that asks for partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, number) for topic in topics for number in sorted(await producer.partitions_for(topic))
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
        await producer.stop()


async def group_at(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group``, where its members start next (none may be running)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def written_since(bootstrap: str, start: dict[TopicPartition, int]) -> list[tuple[str, str, bytes | None, int]]:
    """Every keyed record written after ``start`` until now: topic, key, value, timestamp (ms)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
        ends = await consumer.end_offsets(list(start))
        found: list[tuple[str, str, bytes | None, int]] = []
        while any([await consumer.position(p) < ends[p] for p in start]):
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                found += [(m.topic, m.key.decode(), m.value, m.timestamp) for m in batch if m.key is not None]
        return found
    finally:
        await consumer.stop()
