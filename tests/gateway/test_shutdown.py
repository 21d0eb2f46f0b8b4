"""SIGTERM under load: every request that reached the gateway is answered; after the signal, a
client's next request is refused at connect (so it can go to another instance), never cut halfway."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

BIN = Path(sys.executable).parent
CLIENTS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load_through_a_sigterm(port: int, process: subprocess.Popen[bytes]) -> tuple[Counter[str], Counter[str]]:
    answered: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=CLIENTS)  # keep-alive connections, reused request after request
    async with aiohttp.ClientSession(connector=connector, headers={"X-API-Key": "operator"}) as session:

        async def client() -> None:
            until = time.monotonic() + 5
            while time.monotonic() < until:
                try:
                    async with session.post(f"http://127.0.0.1:{port}/api/v2/providers/query", json={"limit": 1}) as r:
                        await r.read()
                        answered[str(r.status)] += 1
                except aiohttp.ClientConnectorError:
                    failed["refused at connect"] += 1
                    await asyncio.sleep(0.01)
                except aiohttp.ClientError as exc:
                    failed[type(exc).__name__] += 1

        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        await asyncio.gather(*clients)
    return answered, failed


def test_requests_in_flight_at_sigterm_are_answered_and_none_is_cut(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {"GPUBROKER_DATA_DIR": str(tmp_path), "GPUBROKER_PLUGINS": "[]", "GPUBROKER_ADMIN_API_KEY": "operator"}
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    port = free_port()
    process = subprocess.Popen(
        [BIN / "granian", "--interface", "asgi", "--port", str(port), "gpubroker.gateway.asgi:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
        answered, failed = asyncio.run(load_through_a_sigterm(port, process))
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert answered["200"] > 100 and set(answered) == {"200"}, answered
    assert set(failed) <= {"refused at connect"}, f"requests cut or refused halfway: {failed}"
