"""The commands that run and administer the product, on this machine's installation.

``up`` runs the gateway with every installed provider's worker in one process (embedded);
``worker`` runs one provider's worker (one Kubernetes Deployment each); ``gpus resolve|score`` and
``plugins`` are tools for users and plugin authors; ``vault`` writes the Vault policies for
operators. Each imports what it runs only when run, so the commands over the API start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from gpubroker.core.errors import GpubrokerError


def add_commands(commands: Any, gpus: Any) -> None:
    """The operators' and plugin authors' commands; ``gpus`` is the ``gpus`` command's actions."""
    up = commands.add_parser("up", help="run the gateway and every installed provider's worker in one process")
    up.add_argument("--host", help="address to listen on (default GPUBROKER_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default GPUBROKER_PORT or 8000)")
    up.set_defaults(run=_cmd_up)

    serve = commands.add_parser("serve", help="run one production gateway instance (stateless; run many)")
    serve.add_argument("--host", help="address to listen on (default GPUBROKER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default GPUBROKER_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.set_defaults(run=_cmd_serve)

    worker = commands.add_parser("worker", help="run one provider's worker, publishing to Kafka")
    worker.add_argument("--provider", required=True, help="provider name, as listed by 'gpubroker plugins list'")
    worker.add_argument("--once", action="store_true", help="poll once, publish, and exit (1 if the poll failed)")
    worker.add_argument("--metrics-port", type=int, default=9100, help="Prometheus metrics port (0: off)")
    worker.add_argument(
        "--shard",
        default=os.environ.get("GPUBROKER_SHARD") or "0/1",
        help="this replica's share of the provider's work, INDEX/COUNT (default GPUBROKER_SHARD or 0/1)",
    )
    worker.add_argument("--check", action="store_true", help="exit 1 if this worker is unhealthy (Kubernetes probe)")
    worker.set_defaults(run=_cmd_worker)

    migrate = commands.add_parser("migrate", help="create or update the gateway's database tables")
    migrate.add_argument("--check", action="store_true", help="change nothing; exit 1 if a migration is not applied")
    migrate.set_defaults(run=_cmd_migrate)
    prune = commands.add_parser("prune", help="delete price history, health checks and audit events past retention")
    prune.set_defaults(run=_cmd_prune)

    users = commands.add_parser("users", help="accounts").add_subparsers(metavar="ACTION")
    create = users.add_parser("create", help="create a user (the password is read from standard input)")
    create.add_argument("email")
    create.add_argument("--plan", default="free", help="free, pro, enterprise or admin (default free)")
    create.set_defaults(run=_cmd_users_create)
    plan = users.add_parser("plan", help="change a user's plan")
    plan.add_argument("email")
    plan.add_argument("plan", help="free, pro, enterprise or admin")
    plan.set_defaults(run=_cmd_users_plan)
    auth = commands.add_parser("auth", help="token signing").add_subparsers(metavar="ACTION")
    rotate = auth.add_parser("rotate-key", help="sign new tokens with a new key; old tokens verify until they expire")
    rotate.set_defaults(run=_cmd_auth_rotate)
    service = auth.add_parser("service-token", help="a token for a platform component (the only way into /internal)")
    service.add_argument("name", help="the component, e.g. airflow")
    service.add_argument("--ttl-s", type=int, help="lifetime in seconds (default GPUBROKER_SERVICE_TOKEN_TTL_S)")
    service.set_defaults(run=_cmd_auth_service_token)

    resolve = gpus.add_parser("resolve", help="resolve raw provider GPU names, one JSON object per line")
    resolve.add_argument("names", nargs="+", metavar="NAME")
    resolve.set_defaults(run=_cmd_gpus_resolve)
    scoring = gpus.add_parser("score", help="how well GPU names are resolved, against a labelled CSV set")
    scoring.add_argument("labels", type=Path, help="CSV: name,family,memory_gb,form_factor,source")
    scoring.set_defaults(run=_cmd_gpus_score)

    k8s = commands.add_parser("k8s", help="Kubernetes manifests").add_subparsers(metavar="ACTION")
    workers = k8s.add_parser("workers", help="write one worker per installed provider into k8s/workers")
    workers.add_argument("--dir", default="k8s/workers", help="folder to write them to (default: k8s/workers)")
    workers.add_argument("--check", action="store_true", help="write nothing; exit 1 naming the files that differ")
    workers.set_defaults(run=_cmd_k8s_workers)

    vault = commands.add_parser("vault", help="Vault policies for the gateway and each worker").add_subparsers(
        metavar="ACTION"
    )
    policies = vault.add_parser("policies", help="print the least-privilege policies of the installed providers")
    policies.add_argument("--dir", help="write one <policy>.hcl file each into this folder instead")
    policies.set_defaults(run=_cmd_vault_policies)
    apply = vault.add_parser(
        "apply", help="write the policies into the Vault at GPUBROKER_VAULT_ADDR (with an operator's token)"
    )
    apply.add_argument("--approle", action="store_true", help="also an AppRole role per policy, holding only it")
    apply.add_argument(
        "--bound-cidr",
        action="append",
        default=[],
        type=_network,
        help="AppRole logins and their tokens only from this network (repeatable)",
    )
    apply.add_argument("--prune", action="store_true", help="delete worker policies and roles of removed providers")
    apply.set_defaults(run=_cmd_vault_apply)

    plugins = commands.add_parser("plugins", aliases=["plugin"], help="provider plugins").add_subparsers(
        metavar="ACTION"
    )
    listing = plugins.add_parser("list", help="list installed providers")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=_cmd_plugins_list)
    new = plugins.add_parser("new", help="create a working plugin package to start a provider from")
    new.add_argument("name", help="the provider's name: lowercase letters, digits and underscores")
    new.add_argument("--display-name", help="the provider's name as people write it")
    new.add_argument("--dir", default="plugins", help="folder to create it in (default: plugins)")
    new.set_defaults(run=_cmd_plugins_new)
    probe = plugins.add_parser(
        "probe", help="call a provider's live API once and report drift from its schemas and recordings (exit 1)"
    )
    probe.add_argument("provider", help="provider name, as listed by 'gpubroker plugins list'")
    probe.add_argument("--base-url", help="call this URL instead of the provider's API (a proxy, a replay server)")
    probe.add_argument("--timeout", type=float, help="seconds per request (default: the plugin's own timeout)")
    probe.add_argument("--json", action="store_true", help="print the report as one JSON object")
    probe.set_defaults(run=_cmd_plugins_probe)


def _cmd_up(args: argparse.Namespace) -> int:
    from gpubroker.gateway.serve import run_up

    return run_up(host=args.host, port=args.port)


def _cmd_serve(args: argparse.Namespace) -> int:
    from gpubroker.gateway.serve import run_serve

    return run_serve(host=args.host, port=args.port, workers=args.workers)


def _cmd_worker(args: argparse.Namespace) -> int:
    from gpubroker.workers.main import check_worker, parse_shard, run_worker

    shard = parse_shard(args.shard)
    if args.check:
        return check_worker(args.provider, shard)
    return run_worker(args.provider, once=args.once, metrics_port=args.metrics_port, shard=shard)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from gpubroker.gateway.serve import migrate, unapplied_migrations

    if args.check:
        pending = unapplied_migrations()
        for name in pending:
            print(f"not applied: {name}", file=sys.stderr)
        return 1 if pending else 0
    migrate()
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from gpubroker.gateway.serve import prune

    removed = prune()
    print(", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in removed.items()), "removed")
    return 0


def _cmd_users_create(args: argparse.Namespace) -> int:
    from gpubroker.gateway.identity.commands import create_user

    password = sys.stdin.readline().rstrip("\n")
    print(f"created user {create_user(args.email, password, args.plan)} ({args.plan})")
    return 0


def _cmd_users_plan(args: argparse.Namespace) -> int:
    from gpubroker.gateway.identity.commands import set_plan

    set_plan(args.email, args.plan)
    print(f"{args.email}: {args.plan}")
    return 0


def _cmd_auth_rotate(args: argparse.Namespace) -> int:
    from gpubroker.gateway.identity.commands import rotate_key

    print(f"signing with key {rotate_key()}; earlier keys verify until their tokens expire")
    return 0


def _cmd_auth_service_token(args: argparse.Namespace) -> int:
    from gpubroker.gateway.identity.commands import service_token

    token, expires_at = service_token(args.name, args.ttl_s)
    print(token)
    print(f"service:{args.name}, valid until {expires_at} (unix time)", file=sys.stderr)
    return 0


def _cmd_gpus_resolve(args: argparse.Namespace) -> int:
    import orjson

    from gpubroker.core.gpus import resolve

    for name in args.names:
        match = resolve(name)
        if match.gpu_type is None:
            print(f"gpubroker: unknown GPU name {name!r}", file=sys.stderr)
        sys.stdout.write(orjson.dumps(match.to_dict()).decode() + "\n")
    return 0


def _cmd_gpus_score(args: argparse.Namespace) -> int:
    from gpubroker.core.gpus.score import LabelError, Score, score_file

    try:
        result = score_file(args.labels)
    except (OSError, LabelError) as exc:
        print(f"gpubroker gpus score: {args.labels}: {exc}", file=sys.stderr)
        return 2
    for label, match, what in result.misses:
        print(f"miss ({what}): {label.name!r} -> {match.gpu_type}, {match.memory_gb}, {match.form_factor}; "
              f"expected {label.family}, {label.memory_gb}, {label.form_factor} (line {label.line})")  # fmt: skip
    for what, counts in (
        ("family", result.family),
        ("stated memory", result.memory),
        ("stated form factor", result.form_factor),
    ):
        print(f"{what:<20} {counts[0]:>4} / {counts[1]:<4} {Score.share(counts):7.1%}")
    return 0


def _cmd_k8s_workers(args: argparse.Namespace) -> int:
    from gpubroker.core.plugins import load_providers
    from gpubroker.core.settings import load_settings
    from gpubroker.workers import manifests

    settings = load_settings()
    rendered = manifests.render_workers(load_providers(allow=settings.plugins, block=settings.plugins_blocked))
    directory = Path(args.dir)
    if args.check:
        stale = manifests.drifted(rendered, directory)
        for name in stale:
            print(f"{directory / name}: differs from the installed plugins' metadata", file=sys.stderr)
        if stale:
            print("run 'gpubroker k8s workers' and commit the result", file=sys.stderr)
        return 1 if stale else 0
    changed = manifests.write(rendered, directory)
    print(f"{len(rendered) - 1} worker(s) in {directory}; {len(changed)} file(s) changed")
    return 0


def _network(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _vault_policies() -> list[Any]:
    from gpubroker.core.plugins import load_providers
    from gpubroker.core.settings import load_settings
    from gpubroker.core.vault_policies import render_policies

    settings = load_settings()
    registry = load_providers(allow=settings.plugins, block=settings.plugins_blocked)
    return render_policies((provider.info.name for provider in registry), settings)


def _cmd_vault_policies(args: argparse.Namespace) -> int:
    policies = _vault_policies()
    if args.dir is None:
        print("\n".join(f"# --- policy {policy.name}\n{policy.hcl()}" for policy in policies), end="")
        return 0
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for policy in policies:
        (directory / f"{policy.name}.hcl").write_text(policy.hcl())
    print(f"{len(policies)} policies in {directory}")
    return 0


def _cmd_vault_apply(args: argparse.Namespace) -> int:
    import hvac.exceptions
    import requests

    from gpubroker.core.errors import ConfigurationError, VaultUnavailable
    from gpubroker.core.settings import load_settings
    from gpubroker.core.vault import vault_client
    from gpubroker.core.vault_policies import apply

    settings = load_settings()
    if not (settings.vault_addr and settings.vault_token):
        raise ConfigurationError("vault apply needs GPUBROKER_VAULT_ADDR and GPUBROKER_VAULT_TOKEN (an operator's)")
    policies = _vault_policies()
    client = vault_client(settings.vault_addr, token=settings.vault_token, ca_cert=settings.vault_ca_cert, timeout_s=10)
    try:
        changes = apply(
            client,
            policies,
            mount=settings.vault_mount,
            approle=args.approle,
            bound_cidrs=args.bound_cidr,
            prune=args.prune,
        )
    except hvac.exceptions.Forbidden:
        raise VaultUnavailable("the vault refused: GPUBROKER_VAULT_TOKEN may not manage policies and roles") from None
    except (requests.RequestException, hvac.exceptions.VaultError) as exc:
        raise VaultUnavailable(f"{settings.vault_addr}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    for change in changes:
        print(change)
    print(f"{len(policies)} policies applied{' with AppRole roles' if args.approle else ''}; {len(changes)} changed")
    return 0


def _cmd_plugins_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gpubroker.core.scaffold import new_plugin

    target = new_plugin(args.name, Path(args.dir), args.display_name)
    print(f"created {target}; install it with: .venv/bin/pip install -e {target}")
    return 0


def _cmd_plugins_probe(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from gpubroker.core.drift import probe_installed

    report = asyncio.run(probe_installed(args.provider, base_url=args.base_url, timeout_s=args.timeout))
    print(orjson.dumps(report.to_dict()).decode() if args.json else "\n".join(report.lines()))
    return 1 if report.drifted else 0


def _cmd_plugins_list(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from gpubroker.core.plugins import load_providers
    from gpubroker.core.secrets import open_secret_store
    from gpubroker.core.settings import load_settings

    settings = load_settings()
    registry = load_providers(allow=settings.plugins, block=settings.plugins_blocked)
    store = open_secret_store(settings)
    rows = []
    for provider in registry:
        info = provider.info
        try:
            credentials = info.credentials_status(asyncio.run(store.credentials(info.name)))
        except GpubrokerError as exc:
            credentials = f"unknown ({exc})"
        rows.append(
            {
                "name": info.name,
                "display_name": info.display_name,
                "plugin": provider.plugin,
                "version": provider.version,
                "poll_interval_s": info.poll_interval_s,
                "concurrency_limit": info.concurrency_limit,
                "rate_limit_per_minute": info.rate_limit_per_minute,
                "credentials": credentials,
            }
        )
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return 0
    columns = (
        "name",
        "display_name",
        "version",
        "poll_interval_s",
        "concurrency_limit",
        "rate_limit_per_minute",
        "credentials",
    )
    widths = {c: max([len(c)] + [len(str(row[c])) for row in rows]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print(f"{len(rows)} provider(s)")
    return 0
