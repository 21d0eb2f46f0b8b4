"""Operators' account commands: ``gpubroker users create|plan`` and ``gpubroker auth
rotate-key|service-token``."""

from __future__ import annotations

import asyncio
import re

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.settings import load_settings
from gpubroker.core.vault import open_vault
from gpubroker.gateway.identity.emails import canonical_email
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
        user = User.objects.create(email=canonical_email(email), password=make_password(password), plan=_plan(plan))
    except IntegrityError:
        raise ConfigurationError(f"a user with email {email!r} exists") from None
    AuditEvent.objects.create(actor="operator", action="user.create", target=f"{user.pk} {user.plan}", outcome="ok")
    return int(user.pk)


def set_plan(email: str, plan: str) -> None:
    migrate()
    from gpubroker.gateway.models import AuditEvent, User

    updated = User.objects.filter(email=canonical_email(email)).first()
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


PLATFORM_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def service_token(name: str, ttl_s: int | None) -> tuple[str, int]:
    """A platform component's service token (``sub`` = ``service:<name>``): what ``/internal``
    accepts, and nothing a user holds can stand in for. It lasts ``ttl_s`` (default the service
    token lifetime), at most as long as the longest token (signing keys outlive no longer)."""
    if not PLATFORM_NAME.fullmatch(name):
        raise ConfigurationError(f"{name!r} is not a service name: lowercase letters, digits and '-', at most 40")
    settings = load_settings()
    longest = max(settings.access_token_ttl_s, settings.refresh_token_ttl_s, settings.service_token_ttl_s)
    ttl_s = settings.service_token_ttl_s if ttl_s is None else ttl_s
    if not 60 <= ttl_s <= longest:
        raise ConfigurationError(f"--ttl-s must be between 60 and {longest} seconds")
    migrate()
    from gpubroker.gateway.identity.keys import KeyRing
    from gpubroker.gateway.identity.tokens import Tokens
    from gpubroker.gateway.models import AuditEvent

    ring = KeyRing(open_vault(settings), settings.jwt_key_vault_path, max_token_ttl_s=longest)
    asyncio.run(ring.load())
    token, claims = Tokens(ring, {"service": ttl_s}).issue(f"service:{name}", Plan.ADMIN.value, "service")
    AuditEvent.objects.create(actor="operator", action="service-token", target=name, outcome="ok")
    return token, claims.expires_at


def _plan(value: str) -> str:
    if value not in {plan.value for plan in Plan} - {Plan.ANONYMOUS.value}:
        raise ConfigurationError(f"unknown plan {value!r}; one of: free, pro, enterprise, admin")
    return value
