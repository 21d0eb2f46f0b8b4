"""Recording security-relevant actions in the audit log (``AuditEvent``), off the event loop."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from gpubroker.gateway import db

log = logging.getLogger(__name__)


async def record(request: HttpRequest | None, actor: str, action: str, target: str = "", outcome: str = "ok") -> None:
    client = ""
    if request is not None:
        client_address = request.scope.get("client") if hasattr(request, "scope") else None
        client = str(client_address[0]) if client_address else ""
    await db.run(_write, actor, action, target, outcome, client)
    log.info("audit: %s %s %s (%s)", actor, action, target, outcome)


def _write(actor: str, action: str, target: str, outcome: str, client: str) -> None:
    from gpubroker.gateway.models import AuditEvent

    AuditEvent.objects.create(actor=actor, action=action, target=target[:256], outcome=outcome, client=client[:64])
