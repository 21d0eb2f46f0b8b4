"""What the server benchmarks share: ports, the seeded gateway's environment, and stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    gateway: bool
    """The seeded gateway, as opposed to a baseline server."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def gateway_environment(data_dir: Path, offers: int, now: str, *, secret_key: str, operator_key: str) -> dict[str, str]:
    """``bench/seeded_gateway.py`` on embedded settings: none of the services' variables."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("GPUBROKER_KAFKA_BOOTSTRAP", "GPUBROKER_REDIS_URL", "GPUBROKER_DATABASE_URL")
        and not name.startswith("GPUBROKER_VAULT_")
    }
    environment.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "GPUBROKER_MODE": "embedded",
            "GPUBROKER_DATA_DIR": str(data_dir),
            "GPUBROKER_SECRET_KEY": secret_key,
            "GPUBROKER_ADMIN_API_KEY": operator_key,
            "GPUBROKER_LOG_LEVEL": "WARNING",
            "BENCH_OFFERS": str(offers),
            "BENCH_NOW": now,
        }
    )
    return environment


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (granian has a worker process), then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # what did not stop, and a worker outliving its parent
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
