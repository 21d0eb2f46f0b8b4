"""Which permission each route needs, and which list parameters are "basic" (SRS 8.2).

Checked by the guard before a request reaches the fast path or Django, so a cached answer is
never served to someone not allowed to see it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from enum import Enum

from gpubroker.gateway.identity.plans import Permission


class Access(Enum):
    OPEN = "open"
    """No identity and no rate limit: probes and scrapes (``/health``, ``/metrics``)."""
    ANYONE = "anyone"
    """Anyone, rate limited (login, register, refresh: they prove who the caller is)."""


Need = Permission | Access

_ANY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_READ = frozenset({"GET", "HEAD"})
RULES: list[tuple[frozenset[str], re.Pattern[str], Need]] = [
    (_READ, re.compile(r"/(health|metrics)"), Access.OPEN),
    (_READ, re.compile(r"/api/v2/(docs|openapi\.json)"), Access.ANYONE),
    (frozenset({"POST"}), re.compile(r"/api/v2/auth/(login|refresh|register)"), Access.ANYONE),
    (_ANY, re.compile(r"/api/v2/auth/(service-token|api-keys)(/[^/]+)?"), Permission.ACCOUNT),
    (_READ, re.compile(r"/api/v2/providers"), Permission.READ_OFFERS),
    (_READ, re.compile(r"/api/v2/providers/ranking"), Permission.QUERY_OFFERS),
    (frozenset({"POST"}), re.compile(r"/api/v2/providers/(query|bulk/query|decide)"), Permission.QUERY_OFFERS),
    (_ANY, re.compile(r"/api/v2/providers/config/integrations(/[^/]+)?"), Permission.INTEGRATIONS),
    (_READ, re.compile(r"/api/v2/providers/stream"), Permission.QUERY_OFFERS),
    (_READ, re.compile(r"/api/v2/providers/[^/]+"), Permission.READ_OFFERS),
    (_READ, re.compile(r"/api/v2/gpus"), Permission.READ_OFFERS),
    (_READ, re.compile(r"/api/v2/analytics/price-history"), Permission.ANALYTICS),
    (_READ, re.compile(r"/api/v2/analytics/market(/stream)?"), Permission.ANALYTICS),
    (_ANY, re.compile(r"/api/v2/users/favorites(/[^/]+)?"), Permission.ACCOUNT),
    (_ANY, re.compile(r"/api/v2/alerts(/[^/]+)?"), Permission.ALERTS),
    (_ANY, re.compile(r"/api/v2/webhooks(/[^/]+)?"), Permission.WEBHOOKS),
    (_ANY, re.compile(r"/api/v2/admin/.*"), Permission.ADMIN),
    (frozenset({"WEBSOCKET"}), re.compile(r"/ws/providers/?"), Permission.READ_OFFERS),
]

BASIC_LIST_PARAMETERS = frozenset(
    {"gpu", "provider", "min_price", "max_price", "region", "availability", "sort", "limit", "cursor"}
)
BASIC_SORTS = frozenset({"price", "-price"})


@functools.lru_cache(maxsize=4096)
def need(method: str, path: str) -> Need:
    """What a request needs; unknown routes need only to be rate limited (Django answers 404)."""
    for methods, pattern, needed in RULES:
        if method in methods and pattern.fullmatch(path):
            return needed
    return Access.ANYONE


def advanced_parameter(path: str, query: Iterable[tuple[str, str]]) -> str | None:
    """The first list parameter beyond the basic ones, which needs ``QUERY_OFFERS``."""
    if path != "/api/v2/providers":
        return None
    for name, value in query:
        if name not in BASIC_LIST_PARAMETERS or (name == "sort" and value not in BASIC_SORTS):
            return name
    return None
