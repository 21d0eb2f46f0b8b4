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


PROBE = """
echo "user=$(id -u)"
echo "plugins=$(gpubroker plugins list | tail -n 1)"
python3 -m pip --version >/dev/null 2>&1 && echo "found=pip module"
for tool in pip gcc cc make; do command -v "$tool" >/dev/null && echo "found=$tool"; done
true
"""
"""What the image's user, plugins and tools are, in one container: with the vfs driver each run
copies the whole root filesystem, half a minute apiece on a small machine."""


def test_the_image_runs_as_a_numeric_non_root_user_without_build_tools(built: None) -> None:
    result = image("run", "--", "/bin/sh", "-c", PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.partition("=") for line in result.stdout.splitlines() if "=" in line]
    seen = {key: value for key, _, value in lines if key != "found"}
    found = [value for key, _, value in lines if key == "found"]
    assert seen["user"] == "10001"
    assert seen["plugins"].endswith("26 provider(s)")
    assert found == [], f"build tools in the image: {found}"
