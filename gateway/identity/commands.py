"""Operators' account commands: ``gpubroker users create|plan`` and ``gpubroker auth rotate-key``."""

from __future__ import annotations

import asyncio

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.settings import load_settings
from gpubroker.core.vault import open_vault
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.serve import migrate

MIN_PASSWORD = 12


def create_user(email: str, password: str, plan: str) -> int:
    if len(password) < MIN_PASSWORD:
        raise ConfigurationError(f"the password needs at least {MIN_PASSWORD} characters")
    migrate()  # sets Django up, so the models below can be imported
    from django.contrib.auth.hashers import make_password
    from django.db import IntegrityError

    from gpubroker.gateway.models import AuditEvent, User

    try:
        user = User.objects.create(email=email.lower(), password=make_password(password), plan=_plan(plan))
    except IntegrityError:
        raise ConfigurationError(f"a user with email {email!r} exists") from None
    AuditEvent.objects.create(actor="operator", action="user.create", target=f"{user.pk} {user.plan}", outcome="ok")
    return int(user.pk)


def set_plan(email: str, plan: str) -> None:
    migrate()
    from gpubroker.gateway.models import AuditEvent, User

    updated = User.objects.filter(email=email.lower()).first()
    if updated is None:
        raise ConfigurationError(f"no user with email {email!r}")
    updated.plan = _plan(plan)
    updated.save(update_fields=["plan"])
    AuditEvent.objects.create(actor="operator", action="user.plan", target=f"user {updated.pk} {plan}", outcome="ok")


def rotate_key() -> str:
    settings = load_settings()
    migrate()
    from gpubroker.gateway.identity.keys import KeyRing
    from gpubroker.gateway.models import AuditEvent

    longest = max(settings.access_token_ttl_s, settings.refresh_token_ttl_s, settings.service_token_ttl_s)
    ring = KeyRing(open_vault(settings), settings.jwt_key_vault_path, max_token_ttl_s=longest)
    kid = asyncio.run(ring.rotate())
    AuditEvent.objects.create(actor="operator", action="jwt.rotate", target=kid, outcome="ok")
    return kid


def _plan(value: str) -> str:
    if value not in {plan.value for plan in Plan} - {Plan.ANONYMOUS.value}:
        raise ConfigurationError(f"unknown plan {value!r}; one of: free, pro, enterprise, admin")
    return value
