"""Fixtures for the manifests' integration tests: the real kustomize and a real kube-apiserver,
both from `scripts/services` (the optional `kube` service, built from their Go modules).

`scripts/test` builds them in the background while the other tests run, and these tests run
last; a fixture then starts the service (waiting for that build if it is still going)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import optional_service_env
from tests.k8s.kube import KubeAPI
from tests.k8s.render import Renderer

REPO = Path(__file__).resolve().parents[2]
KUBE_VARIABLES = ("GPUBROKER_KUSTOMIZE", "GPUBROKER_KUBE_SERVER", "GPUBROKER_KUBE_TOKEN", "GPUBROKER_KUBE_CA")


@pytest.fixture(scope="session")
def kube_env() -> dict[str, str]:
    """The kube service's variables, starting it (waiting for its build) when it is not running."""
    return optional_service_env("kube", KUBE_VARIABLES, timeout_s=1800)


@pytest.fixture(scope="session")
def renderer(kube_env: dict[str, str]) -> Renderer:
    return Renderer(Path(kube_env["GPUBROKER_KUSTOMIZE"]), REPO / "k8s")


@pytest.fixture(scope="session")
def kube(kube_env: dict[str, str]) -> KubeAPI:
    server, token, ca = (kube_env[f"GPUBROKER_KUBE_{name}"] for name in ("SERVER", "TOKEN", "CA"))
    return KubeAPI(server, token, Path(ca))
