"""Fixtures for the manifests' integration tests: the real kustomize and a real kube-apiserver,
both from `scripts/services` (the optional `kube` service, built from their Go modules).

`scripts/test` builds them in the background while the other tests run, and these tests run
last; a fixture then starts the service (waiting for that build if it is still going)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.k8s.kube import KubeAPI
from tests.k8s.render import Renderer

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services"
KUBE_VARIABLES = ("GPUBROKER_KUSTOMIZE", "GPUBROKER_KUBE_SERVER", "GPUBROKER_KUBE_TOKEN", "GPUBROKER_KUBE_CA")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the integration tests of this folder after every other test, so that the
    background build of their tools overlaps the rest of the suite."""
    here = Path(__file__).parent

    def last(item: pytest.Item) -> bool:
        return item.path.is_relative_to(here) and item.get_closest_marker("integration") is not None

    items.sort(key=last)


@pytest.fixture(scope="session")
def kube_env() -> dict[str, str]:
    """The kube service's variables, starting it when the environment has services but not it."""
    if all(os.environ.get(name) for name in KUBE_VARIABLES):
        return {name: os.environ[name] for name in KUBE_VARIABLES}
    if not os.environ.get("GPUBROKER_SERVICES_DIR"):
        pytest.fail(
            "these tests need kustomize and a kube-apiserver; GPUBROKER_KUBE_* unset. Run them with "
            'scripts/test, or: eval "$(scripts/services up kube >&2; scripts/services env)"'
        )
    subprocess.run([SERVICES, "up", "kube"], check=True, timeout=1800)
    printed = subprocess.run([SERVICES, "env"], check=True, capture_output=True, text=True).stdout
    found = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in printed.splitlines())
    missing = [name for name in KUBE_VARIABLES if not found.get(name)]
    if missing:
        pytest.fail(f"scripts/services up kube did not provide {', '.join(missing)}")
    return {name: found[name] for name in KUBE_VARIABLES}


@pytest.fixture(scope="session")
def renderer(kube_env: dict[str, str]) -> Renderer:
    return Renderer(Path(kube_env["GPUBROKER_KUSTOMIZE"]), REPO / "k8s")


@pytest.fixture(scope="session")
def kube(kube_env: dict[str, str]) -> KubeAPI:
    server, token, ca = (kube_env[f"GPUBROKER_KUBE_{name}"] for name in ("SERVER", "TOKEN", "CA"))
    return KubeAPI(server, token, Path(ca))
