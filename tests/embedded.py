"""An embedded gateway as a person runs it (``gpubroker up``, every installed provider, no
services), in its own process on a free loopback port, for tests that use the product from the
outside: the documented commands, the ``gpubroker`` client commands, the client package."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from gpubroker.core.testkit.replay import ReplayServer

BIN = Path(sys.executable).parent
PASSWORD = "a password long enough for the tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without its ``GPUBROKER_*`` settings, plus ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GPUBROKER_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **settings}


@dataclass(frozen=True)
class Embedded:
    url: str
    env: dict[str, str]
    """The gateway's own settings, for commands that must share its data (``gpubroker users``)."""

    def get_json(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def post_json(self, path: str, body: object, token: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def user(self, email: str, plan: str) -> tuple[str, str]:
        """A new user of ``plan`` (made as an operator would): their access token and an API key."""
        subprocess.run(
            [BIN / "gpubroker", "users", "create", email, "--plan", plan],
            input=PASSWORD + "\n", env=self.env, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        token = self.post_json("/api/v2/auth/login", {"email": email, "password": PASSWORD})["access_token"]
        return token, self.post_json("/api/v2/auth/api-keys", {"name": "tests"}, token=token)["key"]


@contextmanager
def embedded_gateway(data_dir: Path, settings: Mapping[str, str] | None = None) -> Iterator[Embedded]:
    """``gpubroker up`` until every installed provider has reported (live or from its snapshot)."""
    port = free_port()
    env = clean_environment(GPUBROKER_DATA_DIR=str(data_dir), **(settings or {}))
    log = (data_dir.parent / f"gateway-{port}.log").open("wb")
    process = subprocess.Popen(
        [BIN / "gpubroker", "up", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    gateway = Embedded(f"http://127.0.0.1:{port}", env)
    try:
        _wait_until_served(gateway, process, expected=_installed_providers(env))
        yield gateway
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _installed_providers(env: dict[str, str]) -> int:
    listed = subprocess.run(
        [BIN / "gpubroker", "plugins", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return len(listed.stdout.splitlines())


def _wait_until_served(gateway: Embedded, process: subprocess.Popen[bytes], *, expected: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, f"gpubroker up exited with {process.returncode}"
        assert time.monotonic() < deadline, "the embedded gateway did not serve every provider in 120 s"
        try:
            page = gateway.get_json("/api/v2/providers?limit=1")
        except (urllib.error.URLError, ConnectionError):
            page = None
        if isinstance(page, dict) and len(page["providers"]) >= expected:
            return
        time.sleep(0.2)


def copy_recordings(plugin_module: str, folder: Path) -> Path:
    """A copy of a plugin's recordings that a test may change: the replay server reads them anew
    at each request, so the next poll sees the change."""
    with as_file(files(plugin_module).joinpath("recordings")) as recorded:
        shutil.copytree(recorded, folder)
    return folder


@contextmanager
def replayed_gateway(recordings: Path, data_dir: Path) -> Iterator[Embedded]:
    """An embedded gateway with plans enforced: Vast.ai served live by a replay server of
    ``recordings`` and polled every second, Lambda unreachable and so served from its bundled
    snapshot (degraded, stale)."""
    with ReplayServer(recordings) as replay:
        settings = {
            "GPUBROKER_PLUGINS": '["vastai", "lambdalabs"]',
            "GPUBROKER_PROVIDER_BASE_URLS": json.dumps({"vastai": replay.url, "lambdalabs": "http://127.0.0.1:1"}),
            "GPUBROKER_POLL_INTERVALS": '{"vastai": 1}',
            "GPUBROKER_ENFORCE_PLANS": "true",
        }
        with embedded_gateway(data_dir, settings) as running:
            yield running


def change_price(recordings: Path, gpu_name: str, count: int, factor: float) -> int:
    """Multiply one recorded Vast.ai offer's price by ``factor``; its Vast.ai id."""
    bundles = recordings / "bundles.json"
    payload = json.loads(bundles.read_text())
    [target] = [o for o in payload["offers"] if o["gpu_name"] == gpu_name and o["num_gpus"] == count]
    target["dph_total"] = round(target["dph_total"] * factor, 6)
    bundles.write_text(json.dumps(payload))
    return int(target["id"])
