"""The generated Vault policies: each worker reads its own provider's path only, the gateway holds
exactly the paths the gateway's code uses, and the names are the roles the manifests log in with."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpubroker.cli.main import main
from gpubroker.core.plugins import load_providers
from gpubroker.core.settings import Settings
from gpubroker.core.vault_policies import (
    GATEWAY_ROLE,
    gateway_policy,
    render_policies,
    worker_policy,
    worker_role,
)

REPO = Path(__file__).resolve().parents[2]
SELF = {"auth/token/lookup-self": ("read",), "auth/token/renew-self": ("update",)}


def granted(rules: dict[str, tuple[str, ...]], path: str) -> set[str]:
    """Capabilities the rules give on ``path``, with Vault's globbing: ``+`` is one whole segment,
    a trailing ``*`` any suffix."""
    found: set[str] = set()
    for pattern, capabilities in rules.items():
        glob = pattern.endswith("*")
        wanted, actual = pattern.rstrip("*").split("/"), path.split("/")
        if (len(actual) >= len(wanted)) if glob else (len(actual) == len(wanted)):
            pairs = zip(wanted, actual, strict=False)
            last = len(wanted) - 1
            if all(w == a or w == "+" or (glob and i == last and a.startswith(w)) for i, (w, a) in enumerate(pairs)):
                found |= set(capabilities)
    return found


def test_a_worker_may_read_its_own_providers_credentials_and_nothing_else() -> None:
    from gpubroker.gateway.models import Integration

    policy = worker_policy("lambda_labs", Settings())
    assert policy.name == "gpubroker-worker-lambda-labs"
    assert policy.rules == {
        "secret/data/gpubroker/providers/lambda_labs": ("read",),
        "secret/data/gpubroker/users/+/providers/lambda_labs": ("read",),
        **SELF,
    }
    users_own = Integration(user_id=3, provider="lambda_labs").secret_path
    assert granted(policy.rules, f"secret/data/{users_own}") == {"read"}
    for denied in (
        "secret/data/gpubroker/providers/vastai",
        "secret/metadata/gpubroker/providers/lambda_labs",
        f"secret/metadata/{users_own}",
        "secret/data/gpubroker/users/3/providers/vastai",
        "secret/data/gpubroker/users/3/providers/lambda_labs/extra",
        "secret/data/gpubroker/users/3/other/lambda_labs",
    ):
        assert granted(policy.rules, denied) == set(), denied
    assert 'path "secret/data/gpubroker/providers/lambda_labs" {\n  capabilities = ["read"]\n}' in policy.hcl()


def test_the_gateway_policy_covers_the_gateways_own_paths_and_no_provider() -> None:
    from gpubroker.gateway.models import Integration
    from gpubroker.gateway.realtime.deliveries import secret_path

    settings = Settings()
    rules = gateway_policy(settings).rules
    for path in (settings.jwt_key_vault_path, secret_path(17), Integration(user_id=3, provider="vastai").secret_path):
        assert granted(rules, f"secret/data/{path}") >= {"create", "read", "update"}, path
    for path in (secret_path(17), Integration(user_id=3, provider="vastai").secret_path):
        assert granted(rules, f"secret/metadata/{path}") == {"delete"}, path  # VaultKV.delete: every version
    assert granted(rules, "secret/data/gpubroker/gateway") == {"read"}
    for denied in (
        "secret/data/gpubroker/providers/vastai",
        "secret/metadata/gpubroker/providers/vastai",
        "secret/data/gpubroker/users/3/other/vastai",
        "secret/data/gpubroker/webhooks/17/extra",
        "secret/metadata/gpubroker/auth/jwt-keys",  # the key ring is rotated, never deleted
        "sys/policies/acl/gpubroker-gateway",
    ):
        assert granted(rules, denied) == set(), denied


def test_policies_follow_the_configured_mount_prefix_and_key_path() -> None:
    settings = Settings(vault_mount="kv", vault_path_prefix="/gpu/creds/", jwt_key_vault_path="gpu/jwt")
    assert "kv/data/gpu/creds/vastai" in worker_policy("vastai", settings).rules
    rules = gateway_policy(settings).rules
    assert "kv/data/gpu/jwt" in rules and "kv/metadata/gpubroker/users/+/providers/+" in rules


def test_one_policy_per_installed_provider_named_as_its_manifests_vault_role() -> None:
    providers = [provider.info.name for provider in load_providers()]
    policies = render_policies(providers, Settings())
    assert [p.name for p in policies] == [GATEWAY_ROLE, *sorted(worker_role(name) for name in providers)]
    for name in providers:
        manifest = (REPO / "k8s" / "workers" / f"worker-{name.replace('_', '-')}.yaml").read_text()
        assert f"openbao.openbao.org/role: {worker_role(name)}\n" in manifest
    for file in ("gateway.yaml", "migrate.yaml"):
        documents = yaml.safe_load_all((REPO / "k8s" / "base" / "gateway" / file).read_text())
        [pod] = [d["spec"]["template"] for d in documents if d["kind"] in {"Deployment", "Job"}]
        assert pod["metadata"]["annotations"]["openbao.openbao.org/role"] == GATEWAY_ROLE


def test_the_cli_prints_or_writes_the_policies(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vault", "policies"]) == 0
    printed = capsys.readouterr().out
    assert "# --- policy gpubroker-gateway\n" in printed and "# --- policy gpubroker-worker-vastai\n" in printed
    assert main(["vault", "policies", "--dir", str(tmp_path / "policies")]) == 0
    written = {path.stem: path.read_text() for path in (tmp_path / "policies").glob("*.hcl")}
    assert written["gpubroker-worker-vastai"] == worker_policy("vastai", Settings()).hcl()
    assert len(written) == 1 + len(load_providers().names())


def test_apply_needs_an_address_and_an_operators_token(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vault", "apply"]) == 2
    assert "needs GPUBROKER_VAULT_ADDR and GPUBROKER_VAULT_TOKEN" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["vault", "apply", "--bound-cidr", "10.0.0.300/8"])
    assert "--bound-cidr" in capsys.readouterr().err
