"""Who is calling: the identity the guard established, as the views see it."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from gpubroker.gateway.identity.plans import PERMISSIONS, Permission, Plan


@dataclass(frozen=True)
class Identity:
    kind: str
    """``anonymous``; ``user`` (access token); ``agent`` (a service token made from a user's API
    key); ``apikey``; ``platform`` (a service token of the platform's own components, such as the
    Airflow DAGs, the only callers of ``/internal``); ``operator`` (the operator's key)."""
    subject: str
    """``ip:<address>``, ``user:<id>``, ``service:<name>`` or ``operator``: what is audited."""
    plan: Plan
    user_id: int | None = None
    key_id: int | None = None
    """The API key behind an ``apikey`` or ``agent`` identity (revoking it ends both)."""

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.plan]

    @property
    def account(self) -> str:
        """What rate limits count: the whole account (every key and token of a user), else the
        subject."""
        return f"user:{self.user_id}" if self.user_id is not None else self.subject


def identity_of(request: HttpRequest) -> Identity | None:
    """The identity the guard left in the ASGI scope, or None when the request did not pass it."""
    scope = getattr(request, "scope", None)
    return None if scope is None else scope.get("gpubroker.identity")
