"""The worker and the gateway as processes, each logged in to the production-like OpenBao with its
own AppRole over TLS: what the generated policies allow is exactly what each process needs."""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac.exceptions
import pytest

from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.core.vault_policies import GATEWAY_ROLE, worker_role
from tests.conftest import Services
from tests.integration.conftest import SecureVault
from tests.integration.processes import BIN, gateway_process, post_json, production_env, run_worker

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


def approle_env(services: Services, vault: SecureVault, data_dir: Path, role: str) -> dict[str, str]:
    """Production settings that reach the secure OpenBao as ``role``: no token, only AppRole."""
    env = production_env(services, data_dir)
    del env["GPUBROKER_VAULT_TOKEN"]
    role_id, secret_id = vault.approle(role)
    return env | {
        "GPUBROKER_VAULT_ADDR": vault.addr,
        "GPUBROKER_VAULT_CA_CERT": str(vault.ca_cert),
        "GPUBROKER_VAULT_ROLE_ID": role_id,
        "GPUBROKER_VAULT_SECRET_ID": secret_id,
    }


@pytest.fixture
def replay(vastai: RegisteredProvider) -> Iterator[ReplayServer]:
    assert vastai.adapter.recordings is not None
    with ReplayServer(vastai.adapter.recordings) as server:
        yield server


def test_a_worker_polls_with_its_own_providers_credentials_and_no_other(
    services: Services, secure_vault: SecureVault, replay: ReplayServer, tmp_path: Path
) -> None:
    key = secure_vault.seed("vastai")["api_key"]
    polled = run_worker(approle_env(services, secure_vault, tmp_path, worker_role("vastai")), "vastai", replay)
    assert polled.returncode == 0, polled.stderr
    assert replay.requests[0].headers["Authorization"] == f"Bearer {key}"
    assert key not in polled.stdout + polled.stderr

    replay.reset()  # the same worker, given another provider's identity
    refused = run_worker(approle_env(services, secure_vault, tmp_path, worker_role("runpod")), "vastai", replay)
    assert refused.returncode == 1
    assert "Forbidden: permission denied on secret/data/gpubroker/providers/vastai" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert all(key not in request.headers.get("Authorization", "") for request in replay.requests)


def request(url: str, method: str, token: str, body: object = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10) as answer:
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else {}


def test_a_gateway_keeps_its_keys_webhook_secrets_and_integrations_with_its_own_role(
    services: Services, secure_vault: SecureVault, tmp_path: Path
) -> None:
    env = approle_env(services, secure_vault, tmp_path, GATEWAY_ROLE)
    env["GPUBROKER_WEBHOOK_ALLOWED_NETWORKS"] = '["127.0.0.0/8"]'
    email = f"vault-{secrets.token_hex(6)}@example.com"
    made = subprocess.run(
        [BIN / "gpubroker", "users", "create", email, "--plan", "enterprise"], input=PASSWORD + "\n", env=env, text=True
    )
    assert made.returncode == 0
    kv = secure_vault.root().secrets.kv.v2
    with gateway_process(env) as url:
        login = post_json(url + "/api/v2/auth/login", {"email": email, "password": PASSWORD}, {"X-API-Key": ""})
        token = str(login["access_token"])  # signed with the key ring the gateway keeps in Vault
        assert "BEGIN PRIVATE KEY" in (stored(kv, "gpubroker/auth/jwt-keys") or {}).get("keys", "")

        hook_url = {"url": "https://127.0.0.1:9/hook", "events": ["price.alert"]}
        status, hook = request(url + "/api/v2/webhooks", "POST", token, hook_url)
        assert status == 201
        assert stored(kv, f"gpubroker/webhooks/{hook['id']}") == {"secret": hook["secret"]}

        own_key = {"api_key": "user-own-" + secrets.token_hex(6)}
        integration = {"provider": "vastai", "credentials": own_key}
        assert request(url + "/api/v2/providers/config/integrations", "POST", token, integration)[0] == 201
        paths = [
            f"gpubroker/users/{uid}providers/vastai" for uid in kv.list_secrets(path="gpubroker/users")["data"]["keys"]
        ]
        [path] = [path for path in paths if stored(kv, path) == own_key]

        assert request(url + f"/api/v2/webhooks/{hook['id']}", "DELETE", token)[0] == 204
        assert request(url + "/api/v2/providers/config/integrations/vastai", "DELETE", token)[0] == 204
        assert stored(kv, f"gpubroker/webhooks/{hook['id']}") is None and stored(kv, path) is None


def stored(kv: Any, path: str) -> dict[str, str] | None:
    """What the root token reads at ``path``, None when nothing is there."""
    try:
        return dict(kv.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"])
    except hvac.exceptions.InvalidPath:
        return None
