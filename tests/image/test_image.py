"""The image, built here from Containerfile by scripts/image (Debian root filesystems from
mmdebstrap, buildah with chroot isolation; no registry), and its root filesystem run once.

Building costs minutes on a new machine (the two Debian bases, the dependencies); both are
cached per machine, so a later run rebuilds only the product's own layer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "image"
TAG = "gpubroker:test"


def image(verb: str, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """``scripts/image VERB --tag TAG ARGS...`` (for ``run``, ARGS start with ``--``)."""
    return subprocess.run([SCRIPT, verb, "--tag", TAG, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built() -> None:
    result = image("build")
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_image_runs_the_gateway_which_answers_health(built: None) -> None:
    result = image("smoke", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "answered /health as user 10001" in result.stderr
    health = json.loads(result.stdout)
    assert health["mode"] == "embedded" and health["providers"], "the embedded workers report as they first poll"


def test_the_image_runs_as_a_numeric_non_root_user_without_build_tools(built: None) -> None:
    assert image("run", "--", "id", "-u").stdout.strip() == "10001"
    assert image("run", "--", "gpubroker", "plugins", "list").stdout.strip().endswith("26 provider(s)")
    assert image("run", "--", "python3", "-m", "pip", "--version").returncode != 0
    for tool in ("pip", "gcc", "cc", "make"):
        found = image("run", "--", "/bin/sh", "-c", f"command -v {tool}")
        assert found.returncode != 0, f"{tool} is in the image: {found.stdout}"
