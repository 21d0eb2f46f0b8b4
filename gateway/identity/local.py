"""The machine's own user, in embedded mode: a person running the product on their laptop uses
every feature without signing up.

Embedded mode serves one person on one machine. A request without credentials that comes
straight from a loopback address (no proxy in between: no ``X-Forwarded-For``) is that person,
unless ``GPUBROKER_ENFORCE_PLANS`` says to treat it as an anonymous visitor. They act as one local
account at the Admin plan, not rate limited, so what belongs to an account (favourites, alerts,
API keys, webhooks) works for them too. The account is made on first use and has no password: it
cannot sign in, and production mode never uses it. A request with credentials is always the
account they name, at its plan.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gpubroker.gateway import db
from gpubroker.gateway.identity.callers import Identity
from gpubroker.gateway.identity.plans import Plan

LOCAL_EMAIL = "owner@localhost.invalid"
"""The local account's address: ``.invalid`` is reserved (RFC 2606), so no one registers it."""


def is_local_caller(scope: Any, headers: dict[bytes, bytes]) -> bool:
    """Whether the request's peer is this machine itself, with no proxy forwarding for another."""
    if b"x-forwarded-for" in headers:
        return False
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


class LocalOwner:
    """The local account's identity, looked up (or made) once per gateway instance."""

    def __init__(self) -> None:
        self._identity: Identity | None = None

    async def identity(self) -> Identity:
        if self._identity is None:
            user_id = await db.run(_local_account)
            self._identity = Identity("local", f"user:{user_id}", Plan.ADMIN, user_id)
        return self._identity


def _local_account() -> int:
    from django.contrib.auth.hashers import make_password

    from gpubroker.gateway.models import User

    user, _ = User.objects.get_or_create(
        email=LOCAL_EMAIL, defaults={"password": make_password(None), "plan": Plan.ADMIN.value}
    )
    return int(user.pk)
