"""Plans, what each may do (SRS 8.2) and how fast (SRS 3.4, requests per second).

Anonymous visitors and Free users read offers with the basic filters; Pro opens every filter,
sort and endpoint about offers and history, alerts, and renting through the broker (rentals and
agents); Enterprise adds webhooks and its own provider credentials; Admin may do everything,
unlimited.
"""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    ANONYMOUS = "anonymous"
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    ADMIN = "admin"


class Permission(StrEnum):
    READ_OFFERS = "offers:read"
    QUERY_OFFERS = "offers:query"
    """Every filter and sort, ranking, POST queries, bulk and decide."""
    ANALYTICS = "analytics:read"
    ACCOUNT = "account"
    """Favourites and one's own API keys."""
    ALERTS = "alerts"
    RENTALS = "rentals"
    """Renting instances through the broker, and the agents that rent for a user."""
    WEBHOOKS = "webhooks"
    INTEGRATIONS = "integrations"
    ADMIN = "admin"


OWNED = frozenset(
    {Permission.ACCOUNT, Permission.ALERTS, Permission.RENTALS, Permission.WEBHOOKS, Permission.INTEGRATIONS}
)
"""Permissions over what a user owns: only an identity with a user account behind it (a user's
token or API key) has them, whatever its plan; the operator's key and platform services do not."""

_FREE = frozenset({Permission.READ_OFFERS, Permission.ACCOUNT})
_PRO = _FREE | {Permission.QUERY_OFFERS, Permission.ANALYTICS, Permission.ALERTS, Permission.RENTALS}
_ENTERPRISE = _PRO | {Permission.WEBHOOKS, Permission.INTEGRATIONS}

PERMISSIONS: dict[Plan, frozenset[Permission]] = {
    Plan.ANONYMOUS: frozenset({Permission.READ_OFFERS}),
    Plan.FREE: _FREE,
    Plan.PRO: _PRO,
    Plan.ENTERPRISE: _ENTERPRISE,
    Plan.ADMIN: frozenset(Permission),
}

REQUESTS_PER_SECOND: dict[Plan, int | None] = {
    Plan.ANONYMOUS: 10,
    Plan.FREE: 10,
    Plan.PRO: 100,
    Plan.ENTERPRISE: 1000,
    Plan.ADMIN: None,  # operators and internal jobs are not limited
}


def cheapest_with(permission: Permission) -> Plan:
    """The first plan that has a permission, to tell a refused caller what would allow it."""
    return next(plan for plan in Plan if permission in PERMISSIONS[plan])
