"""Shared fixtures. Integration tests (marked ``integration``) use the real services started by
``scripts/services up``, found through the ``GPUBROKER_*`` variables it prints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpubroker.core.plugins import RegisteredProvider, load_providers


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
