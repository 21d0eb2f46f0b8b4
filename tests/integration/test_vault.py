"""Credentials from the real Vault API (OpenBao): reads, the one-hour cache, redaction."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import hvac
import pytest

from gpubroker.core.errors import CredentialsUnavailable
from gpubroker.core.secrets import VaultSecretStore
from tests.conftest import Services

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def seed(services: Services, provider: str, values: dict[str, str]) -> None:
    client = hvac.Client(url=services.vault_addr, token=services.vault_token)
    client.secrets.kv.v2.create_or_update_secret(
        path=f"gpubroker/providers/{provider}", secret=values, mount_point="secret"
    )


async def test_reads_a_providers_credentials(services: Services) -> None:
    seed(services, "acme", {"api_key": "k-" + secrets.token_hex(8), "region": "eu"})
    store = VaultSecretStore(services.vault_addr, token=services.vault_token)
    credentials = await store.credentials("acme")
    assert set(credentials) == {"api_key", "region"}
    assert credentials["api_key"] not in repr(credentials)
    assert dict(await store.credentials("provider-without-secrets")) == {}


async def test_approle_login(services: Services) -> None:
    root = hvac.Client(url=services.vault_addr, token=services.vault_token)
    if "approle/" not in root.sys.list_auth_methods():
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(
        "gpubroker-worker", 'path "secret/data/gpubroker/providers/*" { capabilities = ["read"] }'
    )
    root.auth.approle.create_or_update_approle("worker", token_policies=["gpubroker-worker"], token_ttl="10m")
    role_id = root.auth.approle.read_role_id("worker")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("worker")["data"]["secret_id"]
    seed(services, "acme", {"api_key": "approle-key"})
    store = VaultSecretStore(services.vault_addr, role_id=role_id, secret_id=secret_id)
    assert (await store.credentials("acme"))["api_key"] == "approle-key"


async def test_outage_serves_cached_credentials_for_an_hour_then_fails(services: Services) -> None:
    seed(services, "acme", {"api_key": "cached-key"})
    clock = Clock()
    store = VaultSecretStore(services.vault_addr, token=services.vault_token, clock=clock, timeout_s=1)
    assert (await store.credentials("acme"))["api_key"] == "cached-key"
    subprocess.run([SERVICES, "stop", "vault"], check=True, timeout=60)
    try:
        clock.now = 3599
        assert (await store.credentials("acme"))["api_key"] == "cached-key"
        clock.now = 3601
        with pytest.raises(CredentialsUnavailable, match="cached credentials are 3601s old") as error:
            await store.credentials("acme")
        assert "cached-key" not in str(error.value) and services.vault_token not in str(error.value)
    finally:
        subprocess.run([SERVICES, "start", "vault"], check=True, timeout=120)


async def test_a_short_lived_token_is_renewed_before_it_expires(services: Services) -> None:
    import asyncio

    root = hvac.Client(url=services.vault_addr, token=services.vault_token)
    root.sys.create_or_update_policy(
        "gpubroker-read", 'path "secret/data/gpubroker/providers/*" { capabilities = ["read"] }'
    )
    token = root.auth.token.create(policies=["gpubroker-read"], ttl="3s", renewable=True, explicit_max_ttl="60s")[
        "auth"
    ]["client_token"]
    seed(services, "acme", {"api_key": "renewed-key"})
    store = VaultSecretStore(services.vault_addr, token=token)
    for _ in range(3):  # 6.6 s in all: more than twice the token's 3 s lease
        assert (await store.credentials("acme"))["api_key"] == "renewed-key"
        await asyncio.sleep(2.2)
    # An expired token cannot be looked up at all; this one outlived its first lease twice over.
    assert root.auth.token.lookup(token)["data"]["id"] == token
