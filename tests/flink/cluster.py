"""Driving the analytics job on the real Flink cluster and Kafka, for the tests of the jobs.

Each test module submits the job on topics of its own (one partition each, so the order the
test produces is the order the job reads) and cancels it at the end; the end-to-end test runs it
on the product's topics instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gpubroker.core import events


@dataclass(frozen=True)
class Flink:
    rest: str
    client: Path
    """The ``gpubroker-flink`` command of Flink's environment."""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.rest + path, timeout=10) as answer:
            return json.loads(answer.read())

    def submit(self, *args: str) -> str:
        done = subprocess.run([self.client, "submit", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        self.wait_for_state(job_id, "RUNNING")
        return job_id

    def cancel(self, job_id: str) -> None:
        subprocess.run([self.client, "cancel", job_id], check=True, capture_output=True, timeout=60)
        self.wait_for_state(job_id, "CANCELED")

    def state(self, job_id: str) -> str:
        return str(self.get(f"/jobs/{job_id}")["state"])

    def wait_for_state(self, job_id: str, state: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.state(job_id)) != state:
            assert now not in ("FAILED", "CANCELED") or now == state, f"job {job_id} is {now}"
            assert time.monotonic() < deadline, f"job {job_id} still {now}, not {state}"
            time.sleep(0.5)

    def restarts(self, job_id: str) -> int:
        return len(self.get(f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"])

    def latest_checkpoint(self, job_id: str) -> str:
        completed = self.get(f"/jobs/{job_id}/checkpoints")["latest"]["completed"]
        assert completed is not None, "the job has completed no checkpoint"
        return str(completed["external_path"])


def flink_cluster() -> Flink:
    rest, python = os.environ.get("GPUBROKER_FLINK_REST"), os.environ.get("GPUBROKER_FLINK_PYTHON")
    if not rest or not python:
        pytest.fail(
            "these tests need the Flink cluster; GPUBROKER_FLINK_REST and GPUBROKER_FLINK_PYTHON are unset. "
            'Start it with: scripts/services up flink && eval "$(scripts/services env)"'
        )
    return Flink(rest, Path(python).parent / "gpubroker-flink")


@dataclass(frozen=True)
class Topics:
    updates: str
    alerts: str
    aggregates: str
    dead_letters: str

    def job_args(self, bootstrap: str, name: str) -> list[str]:
        return [
            f"--bootstrap={bootstrap}",
            f"--name={name}",
            f"--updates-topic={self.updates}",
            f"--alerts-topic={self.alerts}",
            f"--aggregates-topic={self.aggregates}",
            f"--dead-letter-topic={self.dead_letters}",
            "--start=earliest",
        ]


@dataclass(frozen=True)
class RunningJob:
    topics: Topics
    job_id: str


@contextmanager
def private_topics(bootstrap: str, partitions: int = 1) -> Iterator[Topics]:
    """Topics of the job's own, deleted afterwards: one partition (the order produced is the
    order read) unless told otherwise."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    topics = Topics(f"{prefix}.updates", f"{prefix}.alerts", f"{prefix}.aggregates", f"{prefix}.dlq")
    names = [topics.updates, topics.alerts, topics.aggregates, topics.dead_letters]
    made = [NewTopic(name, partitions, 1) for name in names]
    asyncio.run(_admin(bootstrap, lambda admin: admin.create_topics(made)))
    try:
        yield topics
    finally:
        asyncio.run(_admin(bootstrap, lambda admin: admin.delete_topics(names)))


async def _admin(bootstrap: str, act: Callable[[AIOKafkaAdminClient], Any]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await act(admin)
    finally:
        await admin.close()


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, bytes]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, value, key=key.encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def updates(bootstrap: str, topic: str, items: Iterable[events.PriceUpdate]) -> None:
    produce(bootstrap, topic, ((u.offer_id, u.encode()) for u in items))


def read_committed(
    bootstrap: str,
    topic: str,
    done: Callable[[list[tuple[str, bytes]]], bool],
    *,
    timeout: float = 90,
    quiet: float = 3,
) -> list[tuple[str, bytes]]:
    """Every committed record of ``topic`` from the beginning, read until ``done`` says so and
    then for ``quiet`` seconds more (so a duplicate would be seen too), or until ``timeout``."""

    async def read() -> list[tuple[str, bytes]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", isolation_level="read_committed"
        )
        await consumer.start()
        found: list[tuple[str, bytes]] = []
        deadline, finished_at = time.monotonic() + timeout, None
        try:
            while time.monotonic() < deadline and (finished_at is None or time.monotonic() < finished_at + quiet):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    found += [(m.key.decode(), m.value) for m in messages if m.key is not None and m.value is not None]
                if finished_at is None and done(found):
                    finished_at = time.monotonic()
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())
