"""Least-privilege Vault policies for GPUBROKER's processes, generated from the installed plugins.

Each provider's worker gets its own policy (``gpubroker-worker-<provider>``) that can read that
provider's credentials, and users' own credentials for that provider (Enterprise integrations,
which it rents with), and nothing else, so a compromised worker cannot read another cloud's keys;
the gateway gets ``gpubroker-gateway``: its own settings, its JWT key set, webhook signing
secrets and users' provider integrations, and no provider path. The names are also the Vault
roles the Kubernetes manifests log in with (``workers/manifests.py``), so one set of names holds
on every deployment. ``apply`` writes the policies, and optionally AppRole roles bound to them,
into a running Vault (``gpubroker vault apply``; ``scripts/services`` does it for the local
OpenBao).

Every policy also lets its token look itself up and renew itself: the product renews its token
(``VaultKV``) and the OpenBao agent reads its own token, so roles can be created without
Vault's ``default`` policy and hold exactly what is listed here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.settings import Settings

GATEWAY_ROLE = "gpubroker-gateway"
WORKER_ROLE_PREFIX = "gpubroker-worker-"
# Where the gateway keeps what it writes itself; the gateway builds the same paths
# (gateway/realtime/deliveries.py, gateway/models/features.py).
GATEWAY_SETTINGS_PATH = "gpubroker/gateway"
WEBHOOK_SECRETS = "gpubroker/webhooks"
USER_SECRETS = "gpubroker/users"
# A token's rights over itself: look up (the agent renders it) and renew (VaultKV keeps it alive).
SELF_PATHS = {"auth/token/lookup-self": ("read",), "auth/token/renew-self": ("update",)}
# Periodic tokens never reach a maximum lifetime: the product renews them for as long as it runs.
TOKEN_PERIOD = "1h"


@dataclass(frozen=True)
class Policy:
    """One Vault ACL policy: its name (also its role's), what it is for, and its rules (path to
    capabilities)."""

    name: str
    purpose: str
    rules: dict[str, tuple[str, ...]]

    def hcl(self) -> str:
        return f"# {self.purpose}\n" + "\n".join(
            f"path {json.dumps(path)} {{\n  capabilities = {json.dumps(list(caps))}\n}}\n"
            for path, caps in self.rules.items()
        )


def worker_role(provider: str) -> str:
    """The Vault role (and policy) of ``provider``'s worker; Kubernetes names allow no underscore."""
    return WORKER_ROLE_PREFIX + provider.replace("_", "-")


def credentials_path(provider: str, mount: str = "secret", prefix: str = "gpubroker/providers") -> str:
    """The KV v2 path the worker reads its provider's credentials from (as ``bao kv`` writes it)."""
    return f"{mount}/{prefix.strip('/')}/{provider}"


def integration_path(user_id: int | str, provider: str) -> str:
    """Where a user's own credentials for ``provider`` are kept (``gateway.models.Integration``);
    ``user_id`` ``"+"`` is every user's, as a policy path."""
    return f"{USER_SECRETS}/{user_id}/providers/{provider}"


def worker_policy(provider: str, settings: Settings) -> Policy:
    """Read this provider's credentials and users' own credentials for this provider (what it
    rents with for them); nothing else, not even a listing of the other providers or users."""
    mount = settings.vault_mount
    rules: dict[str, tuple[str, ...]] = {
        _data_path(mount, f"{settings.vault_path_prefix.strip('/')}/{provider}"): ("read",),
        _data_path(mount, integration_path("+", provider)): ("read",),
        **SELF_PATHS,
    }
    return Policy(
        worker_role(provider), f"{provider}'s worker: its provider's credentials only, its own and users'", rules
    )


def gateway_policy(settings: Settings) -> Policy:
    """What the gateway reads and writes; no provider's credentials (workers call providers).

    Deletes remove every version (``VaultKV.delete``), which is a right on the metadata path.
    ``+`` matches exactly one path segment: a webhook's id, a user's id, a provider's name."""
    mount = settings.vault_mount
    rules: dict[str, tuple[str, ...]] = {
        _data_path(mount, GATEWAY_SETTINGS_PATH): ("read",),
        _data_path(mount, settings.jwt_key_vault_path.strip("/")): ("create", "read", "update"),
        _data_path(mount, f"{WEBHOOK_SECRETS}/+"): ("create", "read", "update"),
        _metadata_path(mount, f"{WEBHOOK_SECRETS}/+"): ("delete",),
        _data_path(mount, integration_path("+", "+")): ("create", "read", "update"),
        _metadata_path(mount, integration_path("+", "+")): ("delete",),
        **SELF_PATHS,
    }
    purpose = "the gateway: its settings, JWT keys, webhook secrets, users' integrations; no provider's credentials"
    return Policy(GATEWAY_ROLE, purpose, rules)


def render_policies(providers: Iterable[str], settings: Settings) -> list[Policy]:
    """The gateway's policy, then one per provider in name order."""
    return [gateway_policy(settings), *(worker_policy(name, settings) for name in sorted(providers))]


def apply(
    client: Any,
    policies: Sequence[Policy],
    *,
    mount: str,
    approle: bool = False,
    bound_cidrs: Sequence[str] = (),
    prune: bool = False,
) -> list[str]:
    """Write ``policies`` into the Vault ``client`` (an hvac client with an operator's token)
    and, with ``approle``, an AppRole role per policy holding only that policy. Idempotent.

    Makes sure KV v2 is mounted at ``mount`` (and AppRole enabled) first. ``bound_cidrs`` limits
    where secret ids may log in and tokens may be used from. ``prune`` deletes worker policies
    and roles of providers no longer in ``policies`` (a plugin that was removed keeps no access).
    Returns what it changed, one line each."""
    changes = _ensure_engines(client, mount, approle)
    wanted = {policy.name for policy in policies}
    for policy in policies:
        if _current_policy(client, policy.name) != policy.hcl():
            client.sys.create_or_update_acl_policy(name=policy.name, policy=policy.hcl())
            changes.append(f"policy {policy.name}")
        if approle:
            client.auth.approle.create_or_update_approle(
                policy.name,
                token_policies=[policy.name],
                token_no_default_policy=True,
                token_period=TOKEN_PERIOD,
                token_type="service",
                bind_secret_id=True,
                secret_id_bound_cidrs=list(bound_cidrs),  # empty: none, also clearing earlier ones
                token_bound_cidrs=list(bound_cidrs),
            )
    if prune:
        for name in _listed(client.sys.list_acl_policies, "keys"):
            if name.startswith(WORKER_ROLE_PREFIX) and name not in wanted:
                client.sys.delete_acl_policy(name)
                changes.append(f"removed policy {name}")
        if approle:
            for name in _listed(client.auth.approle.list_roles, "keys"):
                if name.startswith(WORKER_ROLE_PREFIX) and name not in wanted:
                    client.auth.approle.delete_role(name)
                    changes.append(f"removed role {name}")
    return changes


def _ensure_engines(client: Any, mount: str, approle: bool) -> list[str]:
    changes = []
    engines = client.sys.list_mounted_secrets_engines()["data"]
    engine = engines.get(f"{mount}/")
    if engine is None:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        changes.append(f"mounted KV v2 at {mount}/")
    elif engine.get("type") != "kv" or (engine.get("options") or {}).get("version") != "2":
        raise ConfigurationError(f"{mount}/ is mounted as {engine.get('type')} {engine.get('options')}, not KV v2")
    if approle and "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
        changes.append("enabled AppRole")
    return changes


def _current_policy(client: Any, name: str) -> str | None:
    import hvac.exceptions

    try:
        return str(client.sys.read_acl_policy(name)["data"]["policy"])
    except hvac.exceptions.InvalidPath:
        return None


def _listed(listing: Any, key: str) -> list[str]:
    import hvac.exceptions

    try:
        return list(listing()["data"][key])
    except hvac.exceptions.InvalidPath:  # nothing of the kind exists yet
        return []


def _data_path(mount: str, path: str) -> str:
    return f"{mount}/data/{path}"


def _metadata_path(mount: str, path: str) -> str:
    return f"{mount}/metadata/{path}"
