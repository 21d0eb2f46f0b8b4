"""Every route the gateway serves, with what each of its methods needs, read from the
endpoints' own declarations (``access``), and the lookup the guard makes for each request.

The table is built from Django's URL configuration, the same one that will route the request:
for a Ninja path, each operation's ``Requires``; for a plain view, what ``@allow`` declared; for
the WebSocket endpoints, their consumer's ``requires``. Lookups resolve the path as Django will
and normalise the method (``get``, ``Get`` and ``GET`` are one method), so no spelling of a
request can reach a view the table did not clear it for.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.exceptions import Resolver404
from ninja.openapi.views import default_home
from ninja.operation import PathView

from gpubroker.gateway.identity.access import NEEDS_ATTRIBUTE, Requires

log = logging.getLogger(__name__)

WEBSOCKET = "WEBSOCKET"
"""The method a WebSocket handshake is looked up under."""


@dataclass(frozen=True)
class Route:
    pattern: str
    """Django's route, e.g. ``api/v2/providers/<offer_id>``; ``ws/providers`` for a WebSocket."""
    needs: Mapping[str, Requires | None]
    """Method -> its declaration; None where an operation declares nothing. A route with no
    needs at all, or a None, is refused."""


@dataclass(frozen=True)
class Denied:
    status: int
    message: str
    allow: tuple[str, ...] = ()
    """For a 405: the methods the route does take."""


def socket_pattern(path: str, patterns: Iterable[str]) -> str | None:
    """The WebSocket endpoint (``ws/agents/<agent_id>``, slashes stripped) a path is for: each
    ``<name>`` stands for one non-empty path segment."""
    parts = path.strip("/").split("/")
    for pattern in patterns:
        wanted = pattern.strip("/").split("/")
        if len(wanted) == len(parts) and all(
            want == part or (want.startswith("<") and want.endswith(">") and part)
            for want, part in zip(wanted, parts, strict=True)
        ):
            return pattern.strip("/")
    return None


class RouteTable:
    def __init__(self, routes: list[Route], websockets: Mapping[str, Requires]) -> None:
        self._routes = {route.pattern: route for route in routes}
        self._websockets = {path.strip("/"): requires for path, requires in websockets.items()}
        self._resolve: Callable[[str], str | None] = functools.lru_cache(maxsize=8192)(self._pattern_of)
        undeclared = [r.pattern for r in routes if not r.needs or None in r.needs.values()]
        if undeclared:
            log.error("routes that declare no permission are refused: %s", ", ".join(undeclared))

    @classmethod
    def from_django(cls, websockets: Mapping[str, Requires]) -> RouteTable:
        return cls(list(_routes(get_resolver().url_patterns, "")), websockets)

    @property
    def routes(self) -> list[Route]:
        """Every HTTP route and, under the method ``WEBSOCKET``, every WebSocket endpoint."""
        sockets = [Route(path, {WEBSOCKET: requires}) for path, requires in self._websockets.items()]
        return [*self._routes.values(), *sockets]

    def lookup(self, method: str, path: str) -> Requires | Denied:
        """What a request needs, or why it is refused whoever makes it."""
        if method == WEBSOCKET:
            pattern = socket_pattern(path, self._websockets)
            return self._websockets[pattern] if pattern is not None else Denied(404, "no such WebSocket endpoint")
        pattern = self._resolve(path)
        if pattern is None:
            return Denied(404, "not found")
        route = self._routes[pattern]
        if not route.needs:
            return Denied(403, "this endpoint is not available")
        if method not in route.needs:
            allowed = tuple(sorted(route.needs))
            return Denied(405, f"{method} is not allowed here; use {', '.join(allowed)}", allowed)
        requires = route.needs[method]
        if requires is None:
            return Denied(403, "this endpoint is not available")
        return requires

    def _pattern_of(self, path: str) -> str | None:
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return None
        return match.route if match.route in self._routes else None


def _routes(patterns: list[Any], prefix: str) -> Iterator[Route]:
    merged: dict[str, dict[str, Requires | None]] = {}
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and not _ninja_root(pattern.callback):
            merged.setdefault(prefix + str(pattern.pattern), {}).update(_needs(pattern.callback))
    for route, needs in merged.items():
        yield Route(route, needs)


def _ninja_root(view: Callable[..., Any]) -> bool:
    """Ninja's marker of the API's root (``/api/v2/``), which only ever answers 404: not a route,
    so the guard answers 404 for it before Django does."""
    return isinstance(view, functools.partial) and view.func is default_home


def _needs(view: Callable[..., Any]) -> dict[str, Requires | None]:
    declared = getattr(view, NEEDS_ATTRIBUTE, None)
    if declared is not None:
        return dict(declared)
    if not inspect.isfunction(view):
        return {}
    path_view = inspect.getclosurevars(view).nonlocals.get("self")
    if not isinstance(path_view, PathView):
        return {}  # a view nobody declared: refused whatever the method
    needs: dict[str, Requires | None] = {}
    for operation in path_view.operations:
        requires = next((check for check in operation.auth_callbacks if isinstance(check, Requires)), None)
        for method in operation.methods:
            needs[method.upper()] = requires
    return needs
