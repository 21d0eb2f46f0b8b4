"""The production-like OpenBao (``scripts/services``' optional ``vault-secure``): TLS from a local
CA, AppRole, and the policies ``gpubroker vault apply`` generated from the installed plugins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpubroker.core.vault import vault_client
from tests.conftest import optional_service_env

SECURE_VARIABLES = (
    "GPUBROKER_VAULT_SECURE_ADDR",
    "GPUBROKER_VAULT_SECURE_CA_CERT",
    "GPUBROKER_VAULT_SECURE_TOKEN_FILE",
)


@dataclass(frozen=True)
class SecureVault:
    addr: str
    ca_cert: Path
    root_token: str

    def root(self) -> Any:
        """An hvac client with the root token, verifying the server against the local CA."""
        return vault_client(self.addr, token=self.root_token, ca_cert=self.ca_cert, timeout_s=10)

    def approle(self, role: str) -> tuple[str, str]:
        """The role's id and a new secret id for it, as an operator hands them to a process."""
        root = self.root()
        role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
        return role_id, root.auth.approle.generate_secret_id(role)["data"]["secret_id"]

    def seed(self, provider: str) -> dict[str, str]:
        """Made-up credentials for ``provider``, stored where its worker reads them."""
        values = {"api_key": f"{provider}-{secrets.token_hex(8)}"}
        self.root().secrets.kv.v2.create_or_update_secret(
            path=f"gpubroker/providers/{provider}", secret=values, mount_point="secret"
        )
        return values


@pytest.fixture(scope="session")
def secure_vault() -> SecureVault:
    found = optional_service_env("vault-secure", SECURE_VARIABLES)
    return SecureVault(
        addr=found["GPUBROKER_VAULT_SECURE_ADDR"],
        ca_cert=Path(found["GPUBROKER_VAULT_SECURE_CA_CERT"]),
        root_token=Path(found["GPUBROKER_VAULT_SECURE_TOKEN_FILE"]).read_text().strip(),
    )
