"""Shared fixtures. Integration tests (marked ``integration``) use the real services started by
``scripts/services up``, found through the ``GPUBROKER_*`` variables it prints."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from gpubroker.core.plugins import RegisteredProvider, load_providers

# No per-example deadline for the whole suite (the plugins' tests included, as this file is loaded
# first): the suite shares two cores with the services and the gateways it starts, where an example
# that takes 200 ms is the machine's doing. Speed is the benchmarks' to show (bench/).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

SERVICES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services"


LAST = ("image", "dags", "contract", "k8s")
"""Folders whose integration tests need what ``scripts/test`` builds in the background (the
image, Airflow's environment, the API tools, the Kubernetes control plane): they run after every
other test, so that the builds overlap the rest of the suite, in this order, the slowest build
last. A fixture in each waits for its build (or makes it, when run on their own)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("integration") is None:
            return 0
        return next((rank for rank, folder in enumerate(LAST, 1) if item.path.is_relative_to(here / folder)), 0)

    items.sort(key=order)


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str
    database_url: str
    vault_addr: str
    vault_token: str


@pytest.fixture(scope="session")
def services() -> Services:
    names = ("KAFKA_BOOTSTRAP", "REDIS_URL", "DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN")
    missing = [f"GPUBROKER_{name}" for name in names if not os.environ.get(f"GPUBROKER_{name}")]
    if missing:
        pytest.fail(
            f"integration tests need the real services; {', '.join(missing)} unset. "
            'Run them with scripts/test, or: eval "$(scripts/services up >&2; scripts/services env)"'
        )
    return Services(*(os.environ[f"GPUBROKER_{name}"] for name in names))


def services_env() -> dict[str, str]:
    """What ``scripts/services env`` exports, as a mapping."""
    printed = subprocess.run([SERVICES_SCRIPT, "env"], check=True, capture_output=True, text=True, timeout=60).stdout
    values = {}
    for line in printed.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0] if value else ""
    return values


def optional_service_env(service: str, names: tuple[str, ...], *, timeout_s: float = 300) -> dict[str, str]:
    """The variables of an optional service of ``scripts/services`` (one started only when named),
    starting it when the environment has the services but not it: ``scripts/test`` starts it, a
    developer who ran ``scripts/services up`` may not have."""
    if all(os.environ.get(name) for name in names):
        return {name: os.environ[name] for name in names}
    if not os.environ.get("GPUBROKER_SERVICES_DIR"):
        pytest.fail(
            f"these tests need the {service} service; {', '.join(names)} unset. Run them with scripts/test, or: "
            f'eval "$(scripts/services up {service} >&2; scripts/services env)"'
        )
    subprocess.run([SERVICES_SCRIPT, "up", service], check=True, timeout=timeout_s)
    found = services_env()
    missing = [name for name in names if not found.get(name)]
    if missing:
        pytest.fail(f"scripts/services up {service} did not provide {', '.join(missing)}")
    return {name: found[name] for name in names}


@pytest.fixture(scope="session")
def vastai() -> RegisteredProvider:
    return load_providers(allow=["vastai"]).get("vastai")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """An environment with no GPUBROKER_* settings but a fresh data directory, for tests that
    build their own Settings."""
    for name in list(os.environ):
        if name.startswith("GPUBROKER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GPUBROKER_DATA_DIR", str(tmp_path / "data"))
    yield monkeypatch


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Test on an SQLite file, as embedded mode runs, not on SQLite's shared in-memory database:
    the gateway's background tasks read while a test writes, and the in-memory one refuses at
    once ("table is locked") where a file makes the second connection wait its turn. Nothing
    needs to survive a crash of the test run, so nothing waits for the disk either."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")
        database.setdefault("OPTIONS", {})["init_command"] = "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL"
