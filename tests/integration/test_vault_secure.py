"""Vault as in production (OpenBao with Raft storage, TLS from a local CA, AppRole): each worker's
identity reads only its own provider's credentials, the gateway's none of them, TLS is verified,
and data, policies and logins survive a restart."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import hvac
import pytest
import requests

from gpubroker.core.errors import CredentialsUnavailable, VaultPermissionDenied, VaultUnavailable
from gpubroker.core.plugins import load_providers
from gpubroker.core.secrets import VaultSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.vault import VaultKV
from gpubroker.core.vault_policies import (
    GATEWAY_ROLE,
    gateway_policy,
    integration_path,
    worker_policy,
    worker_role,
)
from tests.conftest import SERVICES_SCRIPT
from tests.integration.conftest import SecureVault

pytestmark = pytest.mark.integration

GPUBROKER = Path(sys.executable).parent / "gpubroker"


def worker_kv(vault: SecureVault, provider: str) -> VaultKV:
    role_id, secret_id = vault.approle(worker_role(provider))
    return VaultKV(vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=vault.ca_cert)


def status_of(vault: SecureVault, token: str, method: str, path: str) -> int:
    """The HTTP status Vault answers ``token`` with: the wire-level truth behind hvac's exceptions."""
    answer = requests.request(
        method, f"{vault.addr}/v1/{path}", headers={"X-Vault-Token": token}, verify=vault.ca_cert, timeout=10
    )
    return answer.status_code


def test_every_installed_provider_has_a_role_that_reads_only_its_own_credentials(secure_vault: SecureVault) -> None:
    root = secure_vault.root()
    names = sorted(provider.info.name for provider in load_providers())
    assert len(names) >= 2
    settings = Settings()
    for index, name in enumerate(names):
        role = worker_role(name)
        assert root.sys.read_acl_policy(role)["data"]["policy"] == worker_policy(name, settings).hcl()
        config = root.auth.approle.read_role(role)["data"]
        assert config["token_policies"] == [role] and config["token_no_default_policy"] is True
        assert config["secret_id_bound_cidrs"] == ["127.0.0.1/32"] and config["token_period"] == 3600
        kv = worker_kv(secure_vault, name)
        kv.keep_token_alive()  # logs in
        neighbour = names[(index + 1) % len(names)]
        paths = [f"secret/data/gpubroker/providers/{name}", f"secret/data/gpubroker/providers/{neighbour}"]
        granted = root.sys.get_capabilities(paths=paths, token=kv.client.token)["data"]
        assert granted[paths[0]] == ["read"] and granted[paths[1]] == ["deny"], name


async def test_a_worker_reads_its_own_providers_credentials_and_is_refused_another(secure_vault: SecureVault) -> None:
    own = secure_vault.seed("vastai")
    secure_vault.seed("runpod")
    role_id, secret_id = secure_vault.approle(worker_role("vastai"))
    store = VaultSecretStore(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
    assert dict(await store.credentials("vastai")) == own
    refused = "Vault refused and no cached credentials for runpod: Forbidden: permission denied on secret/data/"
    with pytest.raises(CredentialsUnavailable, match=refused):
        await store.credentials("runpod")

    kv = worker_kv(secure_vault, "vastai")
    with pytest.raises(VaultPermissionDenied, match="permission denied on secret/data/gpubroker/providers/runpod"):
        await kv.read("gpubroker/providers/runpod")
    token = kv.client.token
    assert status_of(secure_vault, token, "GET", "secret/data/gpubroker/providers/vastai") == 200
    assert status_of(secure_vault, token, "GET", "secret/data/gpubroker/providers/runpod") == 403
    assert status_of(secure_vault, token, "LIST", "secret/metadata/gpubroker/providers") == 403  # no listing
    assert status_of(secure_vault, token, "POST", "secret/data/gpubroker/providers/vastai") == 403  # read only
    assert status_of(secure_vault, token, "GET", "secret/data/gpubroker/auth/jwt-keys") == 403


async def test_a_worker_reads_its_providers_users_own_credentials_and_no_others(secure_vault: SecureVault) -> None:
    """Renting with a user's integration: the worker of a provider reads what users stored for that
    provider (the gateway wrote it), and nothing users stored for another provider."""
    user = secrets.randbelow(10**9)
    root = secure_vault.root()
    own = {"api_key": f"user-{secrets.token_hex(8)}"}
    for provider in ("vastai", "runpod"):
        root.secrets.kv.v2.create_or_update_secret(
            path=integration_path(user, provider), secret=own, mount_point="secret"
        )
    role_id, secret_id = secure_vault.approle(worker_role("vastai"))
    store = VaultSecretStore(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
    assert dict(await store.user_credentials("vastai", user) or {}) == own
    assert await store.user_credentials("vastai", user + 1) is None  # this user stored none
    with pytest.raises(CredentialsUnavailable, match=f"Vault refused and no cached credentials for user {user}'s"):
        await store.user_credentials("runpod", user)

    kv = worker_kv(secure_vault, "vastai")
    kv.keep_token_alive()
    token = kv.client.token
    assert status_of(secure_vault, token, "GET", f"secret/data/gpubroker/users/{user}/providers/vastai") == 200
    assert status_of(secure_vault, token, "GET", f"secret/data/gpubroker/users/{user}/providers/runpod") == 403
    assert status_of(secure_vault, token, "POST", f"secret/data/gpubroker/users/{user}/providers/vastai") == 403
    assert status_of(secure_vault, token, "DELETE", f"secret/metadata/gpubroker/users/{user}/providers/vastai") == 403
    assert status_of(secure_vault, token, "LIST", f"secret/metadata/gpubroker/users/{user}/providers") == 403
    assert status_of(secure_vault, token, "LIST", "secret/metadata/gpubroker/users") == 403
    assert status_of(secure_vault, token, "GET", f"secret/data/gpubroker/users/{user}/providers/vastai/x") == 403
    for provider in ("vastai", "runpod"):
        root.secrets.kv.v2.delete_metadata_and_all_versions(path=integration_path(user, provider), mount_point="secret")


async def test_the_gateway_keeps_its_own_secrets_and_reads_no_providers(secure_vault: SecureVault) -> None:
    from gpubroker.gateway.realtime.deliveries import secret_path

    secure_vault.seed("vastai")
    role_id, secret_id = secure_vault.approle(GATEWAY_ROLE)
    kv = VaultKV(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
    user = secrets.randbelow(10**9)
    for path in (
        Settings().jwt_key_vault_path,
        secret_path(secrets.randbelow(10**9)),
        integration_path(user, "vastai"),  # gateway.models.Integration.secret_path
    ):
        await kv.write(path, {"value": "v1"})
        await kv.write(path, {"value": "v2"})
        assert await kv.read(path) == {"value": "v2"}
        if path != Settings().jwt_key_vault_path:  # the key ring is rotated, never deleted
            await kv.delete(path)
            assert await kv.read(path) is None
    for denied in (kv.read("gpubroker/providers/vastai"), kv.write("gpubroker/providers/vastai", {"api_key": "x"})):
        with pytest.raises(VaultPermissionDenied):
            await denied
    assert policy_text(secure_vault, GATEWAY_ROLE) == gateway_policy(Settings()).hcl()
    assert "providers/vastai" not in policy_text(secure_vault, GATEWAY_ROLE)


def policy_text(vault: SecureVault, name: str) -> str:
    return str(vault.root().sys.read_acl_policy(name)["data"]["policy"])


async def test_tls_is_verified_against_the_configured_ca_only(secure_vault: SecureVault, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    make_ca = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=another-CA"
    subprocess.run([*make_ca.split(), "-keyout", tmp_path / "other-ca.key", "-out", other_ca], check=True)
    secure_vault.seed("vastai")
    trusted = VaultKV(secure_vault.addr, token=secure_vault.root_token, ca_cert=secure_vault.ca_cert)
    assert await trusted.read("gpubroker/providers/vastai")
    for ca_cert in (other_ca, None):  # a wrong CA, and the system's CAs
        kv = VaultKV(secure_vault.addr, token=secure_vault.root_token, ca_cert=ca_cert)
        with pytest.raises(VaultUnavailable, match="SSLError") as refused:
            await kv.read("gpubroker/providers/vastai")
        assert isinstance(refused.value.__cause__, requests.exceptions.SSLError)
    plain = requests.get(secure_vault.addr.replace("https://", "http://") + "/v1/sys/health", timeout=5)
    assert plain.status_code == 400 and "HTTPS server" in plain.text  # no API in clear text


async def test_data_policies_and_logins_survive_a_restart(secure_vault: SecureVault) -> None:
    root = secure_vault.root()
    own = secure_vault.seed("vastai")
    probe = f"gpubroker-test-{secrets.token_hex(4)}"  # not one apply writes: it must come back from storage
    root.sys.create_or_update_acl_policy(probe, 'path "secret/data/probe" { capabilities = ["read"] }')
    role_id, secret_id = secure_vault.approle(worker_role("vastai"))
    store = VaultSecretStore(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
    kv = VaultKV(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
    assert dict(await store.credentials("vastai")) == own == await kv.read("gpubroker/providers/vastai")
    token = kv.client.token
    subprocess.run([SERVICES_SCRIPT, "stop", "vault-secure"], check=True, timeout=60)
    try:
        assert dict(await store.credentials("vastai")) == own  # served from the cache meanwhile
        with pytest.raises(VaultUnavailable):
            await kv.read("gpubroker/providers/vastai")
    finally:
        subprocess.run([SERVICES_SCRIPT, "start", "vault-secure"], check=True, timeout=120)
    try:
        assert root.sys.read_seal_status()["sealed"] is False  # unsealed again by the script
        assert "secret/data/probe" in policy_text(secure_vault, probe)
        assert await kv.read("gpubroker/providers/vastai") == own and kv.client.token == token  # the same token
        fresh = VaultSecretStore(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
        assert dict(await fresh.credentials("vastai")) == own  # a secret id issued before the restart
    finally:
        root.sys.delete_acl_policy(probe)


async def test_approle_tokens_are_renewed_before_they_expire(secure_vault: SecureVault) -> None:
    root = secure_vault.root()
    role = f"gpubroker-test-renewal-{secrets.token_hex(4)}"
    root.auth.approle.create_or_update_approle(
        role,
        token_policies=[worker_role("vastai")],  # the generated policy must allow renewing itself
        token_no_default_policy=True,
        token_ttl="3s",
        token_max_ttl="60s",
        secret_id_bound_cidrs=["127.0.0.1/32"],
    )
    try:
        own = secure_vault.seed("vastai")
        role_id, secret_id = secure_vault.approle(role)
        kv = VaultKV(secure_vault.addr, role_id=role_id, secret_id=secret_id, ca_cert=secure_vault.ca_cert)
        assert await kv.read("gpubroker/providers/vastai") == own
        token = kv.client.token
        for _ in range(3):  # 6.6 s in all: more than twice the token's 3 s lease
            await asyncio.sleep(2.2)
            assert await kv.read("gpubroker/providers/vastai") == own
        assert kv.client.token == token  # renewed, not a new login
        assert root.auth.token.lookup(token)["data"]["ttl"] > 0
    finally:
        root.auth.approle.delete_role(role)


def test_vault_apply_removes_the_access_of_a_removed_provider(secure_vault: SecureVault) -> None:
    root = secure_vault.root()
    retired = worker_role("retired_cloud")
    root.sys.create_or_update_acl_policy(retired, 'path "secret/data/gpubroker/providers/retired_cloud" {}')
    root.auth.approle.create_or_update_approle(retired, token_policies=[retired])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {
        "GPUBROKER_VAULT_ADDR": secure_vault.addr,
        "GPUBROKER_VAULT_CA_CERT": str(secure_vault.ca_cert),
        "GPUBROKER_VAULT_TOKEN": secure_vault.root_token,
    }
    command = [GPUBROKER, "vault", "apply", "--approle", "--prune", "--bound-cidr", "127.0.0.1/32"]
    applied = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert f"removed policy {retired}" in applied.stdout and f"removed role {retired}" in applied.stdout
    assert retired not in root.sys.list_acl_policies()["data"]["keys"]
    assert worker_role("vastai") in root.auth.approle.list_roles()["data"]["keys"]

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.strip().endswith("0 changed")

    worker_token = worker_kv(secure_vault, "vastai")
    worker_token.keep_token_alive()
    refused = subprocess.run(
        command, env=env | {"GPUBROKER_VAULT_TOKEN": worker_token.client.token}, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "may not manage policies" in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.auth.approle.read_role(retired)
