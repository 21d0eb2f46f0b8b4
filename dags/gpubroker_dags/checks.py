"""The ``plugin_health`` DAG's checks of one provider, and its report to the gateway.

- ``worker``: the provider's worker is up and its last poll succeeded, as the gateway sees it
  from the worker's own events (``/internal/v1/providers/stats``);
- ``last_poll``: that poll is recent: within three poll intervals (the gateway's ``stale``);
- ``conformance``: the installed plugin still turns its own recording, served at the provider's
  real paths by the replay server, into offers through the worker's poller: the smoke of the
  conformance suite every plugin passes in CI, run where the plugin is deployed.

Each check gives ``ok`` and a detail; the verdict goes to ``/internal/v1/providers/health-report``
with the run's id, so a retried task is counted once.
"""

from __future__ import annotations

import secrets
from typing import Any

from gpubroker.core.plugins import load_providers
from gpubroker.core.testkit.polling import poll_replay
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker_dags.gateway import Gateway


def check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail[:2000]}


def worker_checks(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The worker and last-poll checks from the provider's row of ``/providers/stats``."""
    status, error = stats["status"], stats["last_error"]
    if stats["last_success_at"] is None:
        worker = check("worker", False, f"no successful poll seen (status {status})")
    elif error is not None:
        worker = check("worker", False, f"last poll failed: {error}")
    else:
        worker = check("worker", True, f"status {status}, {stats['offers']} offers")
    last = stats["last_poll_at"]
    if last is None:
        poll = check("last_poll", False, "no poll seen")
    elif stats["stale"]:
        poll = check("last_poll", False, f"last poll at {last}: more than three poll intervals ago")
    else:
        poll = check("last_poll", True, f"last poll at {last}")
    return [worker, poll]


async def conformance_smoke(provider: str) -> dict[str, Any]:
    """One poll of the installed plugin against its ``default`` recording."""
    try:
        registered = load_providers(allow=[provider]).get(provider)
    except Exception as exc:
        return check("conformance", False, f"the plugin does not load here: {exc}")
    adapter = registered.adapter
    if adapter.recordings is None:
        return check("conformance", False, "the plugin ships no recordings")
    credentials = {spec.name: f"smoke-{secrets.token_hex(4)}" for spec in adapter.info.credentials}
    try:
        with ReplayServer(adapter.recordings) as server:
            offers = await poll_replay(adapter, server, credentials=credentials, timeout_s=10.0)
    except Exception as exc:
        return check("conformance", False, f"polling its recording failed: {type(exc).__name__}: {exc}")
    if not offers:
        return check("conformance", False, "its recording gave no offers")
    wrong = sorted({offer.provider for offer in offers} - {provider})
    if wrong or len({offer.id for offer in offers}) != len(offers):
        return check("conformance", False, f"offers of {wrong or 'duplicate ids'}")
    return check("conformance", True, f"{len(offers)} offers from {registered.plugin} {registered.version}")


async def check_provider(gateway: Gateway, provider: str, run_id: str) -> dict[str, Any]:
    """Run every check of ``provider`` and report them; returns the gateway's verdict."""
    rows = {row["name"]: row for row in (await gateway.get("/providers/stats"))["providers"]}
    stats = rows.get(provider)
    checks = (
        worker_checks(stats)
        if stats is not None
        else [check("worker", False, "the gateway no longer knows this provider")]
    )
    checks.append(await conformance_smoke(provider))
    report = {"provider": provider, "checks": checks, "run_id": run_id}
    verdict: dict[str, Any] = await gateway.post("/providers/health-report", report)
    return verdict
