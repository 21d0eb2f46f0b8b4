"""Running gateway and worker processes against the real services, for end-to-end tests."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import hvac
import pytest

from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services

BIN = Path(sys.executable).parent
SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
T = TypeVar("T")
OPERATOR_KEY = secrets.token_urlsafe(24)
"""The operator's key (Admin plan, not rate limited) that these tests read the gateway with."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, data: Any = None, *, headers: dict[str, str] | None = None) -> Any:
    """GET (or, with ``data``, POST as JSON) as the operator, unless ``headers`` say otherwise, and
    decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    all_headers = {"X-API-Key": OPERATOR_KEY, **({"Content-Type": "application/json"} if body is not None else {})}
    all_headers |= headers or {}
    request = urllib.request.Request(url, body, all_headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def post_json(url: str, data: Any, headers: dict[str, str] | None = None) -> Any:
    return get_json(url, data, headers=headers)


def wait_for(predicate: Callable[[], T | None], timeout: float = 90.0) -> T:
    """``predicate()`` once it is truthy. The default is generous: the suite shares two cores with
    every service it runs, and a condition met early returns at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail("condition not met in time")


def services_cmd(*args: str) -> None:
    subprocess.run([SERVICES, *args], check=True, timeout=180, capture_output=True)


def production_env(services: Services, data_dir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")},
        "GPUBROKER_MODE": "production",
        "GPUBROKER_SECRET_KEY": secrets.token_hex(16),
        "GPUBROKER_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "GPUBROKER_REDIS_URL": services.redis_url,
        "GPUBROKER_DATABASE_URL": services.database_url,
        "GPUBROKER_VAULT_ADDR": services.vault_addr,
        "GPUBROKER_VAULT_TOKEN": services.vault_token,
        "GPUBROKER_DATA_DIR": str(data_dir),
        "GPUBROKER_ADMIN_API_KEY": OPERATOR_KEY,
        "GPUBROKER_SHUTDOWN_DRAIN_S": "0",  # stopped by the tests, not by a rollout
    }


def seed_credentials(services: Services, provider: RegisteredProvider) -> dict[str, str]:
    """Store a made-up value for each credential the provider takes, as an operator would."""
    values = {spec.name: f"{spec.name}-{secrets.token_hex(8)}" for spec in provider.info.credentials}
    if values:
        client = hvac.Client(url=services.vault_addr, token=services.vault_token)
        client.secrets.kv.v2.create_or_update_secret(
            path=f"gpubroker/providers/{provider.info.name}", secret=values, mount_point="secret"
        )
    return values


def run_worker(env: dict[str, str], provider: str, replay: ReplayServer) -> subprocess.CompletedProcess[str]:
    worker_env = {**env, "GPUBROKER_PROVIDER_BASE_URLS": json.dumps({provider: replay.url})}
    return subprocess.run(
        [BIN / "gpubroker", "worker", "--provider", provider, "--once", "--metrics-port", "0"],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def logged_process(args: list[str], env: dict[str, str], tail: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose output (its last ``tail`` bytes, or all of it) is printed when it stops,
    where pytest shows it for a failed test. The output goes to a file: a pipe nobody reads while
    the test runs fills up after 64 KiB of log lines and then blocks the process's next one."""
    with tempfile.TemporaryFile() as output:
        running = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield running
        finally:
            if running.poll() is None:
                running.terminate()
            try:
                running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait()
            size = output.seek(0, 2)
            output.seek(0 if tail is None else max(0, size - tail))
            print(f"--- {' '.join(args[1:3])}\n{output.read().decode(errors='replace')}")


@contextmanager
def gateway_process(env: dict[str, str], port: int | None = None) -> Iterator[str]:
    """A gateway on ``port`` or a free one (migrating the database first); yields its base URL."""
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    port = port or free_port()
    with logged_process([str(BIN / "gpubroker"), "serve", "--port", str(port)], env):
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                get_json(url + "/health")
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gateway did not start")
        yield url
