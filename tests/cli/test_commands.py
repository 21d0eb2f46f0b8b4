"""The ``gpubroker`` command as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent / "gpubroker"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


def test_gpus_resolve_prints_one_json_object_per_name() -> None:
    result = run("gpus", "resolve", "A100-80GB-SXM", "RTXA6000", "Voodoo 5")
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {
        "raw": "A100-80GB-SXM",
        "gpu_type": "A100",
        "memory_gb": 80,
        "form_factor": "SXM",
        "vendor": "nvidia",
        "nvlink": False,
    }
    assert lines[1]["gpu_type"] == "RTX A6000" and lines[1]["memory_gb"] == 48
    assert lines[2] == {
        "raw": "Voodoo 5", "gpu_type": None, "memory_gb": None, "form_factor": None, "vendor": None, "nvlink": False,
    }  # fmt: skip
    assert "unknown GPU name 'Voodoo 5'" in result.stderr


def test_plugins_list_shows_the_installed_providers() -> None:
    table = run("plugins", "list")
    assert table.returncode == 0
    assert "vastai" in table.stdout and "Vast.ai" in table.stdout
    [row] = [json.loads(line) for line in run("plugins", "list", "--json").stdout.splitlines() if '"vastai"' in line]
    assert row["poll_interval_s"] == 60 and row["concurrency_limit"] == 2
    assert row["credentials"] == "optional, not set"
    configured = run("plugins", "list", "--json", env={"GPUBROKER_SECRET_VASTAI_API_KEY": "k-123456"})
    assert '"credentials":"configured"' in configured.stdout and "k-123456" not in configured.stdout


def test_worker_without_kafka_names_the_missing_setting() -> None:
    result = run("worker", "--provider", "vastai", "--once")
    assert result.returncode == 2
    assert "GPUBROKER_KAFKA_BOOTSTRAP" in result.stderr and "Traceback" not in result.stderr


def test_unknown_provider_is_a_clear_error() -> None:
    result = run("worker", "--provider", "nosuchcloud", env={"GPUBROKER_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "no provider named 'nosuchcloud'" in result.stderr and "vastai" in result.stderr


def test_bad_settings_are_a_clear_error() -> None:
    result = run("plugins", "list", env={"GPUBROKER_MODE": "cloudy"})
    assert result.returncode == 2 and "GPUBROKER_MODE" in result.stderr and "Traceback" not in result.stderr


def test_up_serves_the_labelled_snapshot_when_providers_are_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {
        "GPUBROKER_DATA_DIR": str(tmp_path),
        "GPUBROKER_PLUGINS": '["vastai"]',
        "GPUBROKER_PROVIDER_BASE_URLS": '{"vastai": "http://127.0.0.1:1"}',
    }
    process = subprocess.Popen(
        [BIN, "up", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/api/v2/providers?gpu=RTX%204090", timeout=5) as answer:
                    body = json.loads(answer.read())
                if body["total"]:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert body is not None and body["total"] > 0
        assert all(item["gpu_type"] == "RTX 4090" and item["source"] == "snapshot" for item in body["items"])
        [vast] = body["providers"]
        assert vast["source"] == "snapshot" and vast["stale"] is True
        assert any("bundled snapshot captured" in warning for warning in body["warnings"])
        with urllib.request.urlopen(url + "/health", timeout=5) as answer:
            assert json.loads(answer.read())["providers"][0]["name"] == "vastai"
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert f"serving on {url}/api/v2/providers" in output
    assert "gateway stopped" in output and "Traceback" not in output


def test_migrate_check_names_what_is_not_applied_until_migrate_runs(tmp_path: Path) -> None:
    env = {"GPUBROKER_DATA_DIR": str(tmp_path)}
    pending = run("migrate", "--check", env=env)
    assert pending.returncode == 1
    assert "not applied: gateway.0001_initial" in pending.stderr
    assert run("migrate", env=env).returncode == 0
    done = run("migrate", "--check", env=env)
    assert (done.returncode, done.stderr) == (0, "")
