"""What each endpoint needs, declared with the endpoint itself, and who may meet it.

Every route states its need where it is defined: a Ninja operation through its ``auth``
(``@router.get("/x", auth=Requires(Permission.ALERTS))``), a plain Django view through
``@allow(need, "GET")``, a WebSocket consumer through its ``requires`` attribute. The guard reads
the declaration from the route it resolves (``routes.RouteTable``) and refuses before the
request reaches the fast path or Django; Ninja then calls the same ``Requires`` again inside the
view, before the view's own code runs, as a second line. A route or method that declares
nothing is refused: access fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from django.http import HttpRequest

from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity.callers import Identity, identity_of
from gpubroker.gateway.identity.plans import OWNED, Permission, Plan, cheapest_with


class Access(Enum):
    OPEN = "open"
    """No identity and no rate limit: probes and scrapes (``/health``, ``/ready``, ``/metrics``)."""
    ANYONE = "anyone"
    """Anyone, rate limited: what proves who the caller is (login, register, refresh) and the
    API's description."""
    PLATFORM = "platform"
    """The platform's own components only (``/internal``): a platform service token, never a
    user's token or API key."""


Need = Permission | Access


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


@dataclass(frozen=True)
class Parameters:
    """Query parameters past which an endpoint needs more than its own permission: the list's
    basic filters are for everyone, the rest for plans with ``need`` (SRS 8.2)."""

    basic: frozenset[str]
    need: Permission
    basic_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Parameters that are basic only with these values (``sort=price``, not ``sort=topsis``)."""

    def beyond(self, query: Iterable[tuple[str, str]]) -> str | None:
        """The first parameter beyond the basic ones."""
        for name, value in query:
            if name not in self.basic or (name in self.basic_values and value not in self.basic_values[name]):
                return name
        return None


class Requires:
    """An endpoint's need, as Ninja's ``auth`` for that operation (see the module's docstring)."""

    def __init__(self, need: Need, *, parameters: Parameters | None = None, agents_only: bool = False) -> None:
        self.need = need
        self.parameters = parameters
        self.agents_only = agents_only
        """Only an agent's service token (made from one of the user's API keys) may call it."""

    def __repr__(self) -> str:
        return f"Requires({self.need})"

    @property
    def identifies(self) -> bool:
        """Whether the caller must be identified (and rate limited) at all."""
        return self.need is not Access.OPEN

    def refusal(self, identity: Identity | None, query: Iterable[tuple[str, str]] = ()) -> Refusal | None:
        """Why ``identity`` may not make this request, or None when it may."""
        if self.need is Access.OPEN:
            return None
        if identity is None:
            return Refusal(401, "sign in (Bearer token) or use an API key")
        if self.need is Access.ANYONE:
            return None
        if self.need is Access.PLATFORM:
            if identity.kind == "platform":
                return None
            status = 401 if identity.plan is Plan.ANONYMOUS else 403
            return Refusal(status, "only the platform's own services may call this (a platform service token)")
        if not identity.may(self.need):
            return _plan_refusal(identity, self.need, "this")
        if self.need in OWNED and identity.user_id is None:
            return Refusal(403, "this is about a user's own account: use a user's token or API key")
        if self.agents_only and identity.kind != "agent":
            return Refusal(
                403, "this is for agents: authenticate with a service token (POST /api/v2/auth/service-token)"
            )
        if self.parameters is not None and not identity.may(self.parameters.need):
            beyond = self.parameters.beyond(query)
            if beyond is not None:
                return _plan_refusal(identity, self.parameters.need, f"the {beyond!r} parameter")
        return None

    is_async = True  # Ninja awaits the check instead of sending it to a thread

    async def __call__(self, request: HttpRequest) -> Identity | bool:
        """Ninja's check inside the view: the same rule as the guard's, on the same identity."""
        identity = identity_of(request)
        refusal = self.refusal(identity, request.GET.items())
        if refusal is not None:
            raise ApiError(refusal.status, None, refusal.message)
        return identity if identity is not None else True


def _plan_refusal(identity: Identity, permission: Permission, what: str) -> Refusal:
    plan = cheapest_with(permission).value
    if identity.plan is Plan.ANONYMOUS:
        return Refusal(401, f"{what} needs the {plan} plan or higher: sign in (Bearer token) or use an API key")
    return Refusal(403, f"{what} needs the {plan} plan or higher (you have {identity.plan.value})")


View = TypeVar("View", bound=Callable[..., Any])
NEEDS_ATTRIBUTE = "gpubroker_needs"


def allow(need: Need, *methods: str) -> Callable[[View], View]:
    """Declare a plain Django view's need for ``methods`` (Ninja operations use ``Requires``)."""
    requires = Requires(need)

    def declare(view: View) -> View:
        setattr(view, NEEDS_ATTRIBUTE, {method.upper(): requires for method in methods})
        return view

    return declare


def caller_identity(request: HttpRequest) -> Identity:
    """Who the guard let in; a request that did not pass it is nobody (401)."""
    identity = identity_of(request)
    if identity is None:
        raise ApiError(401, None, "sign in (Bearer token) or use an API key")
    return identity


def caller(request: HttpRequest) -> Identity:
    """The signed-in user (by token or API key) making the request, or a 401."""
    identity = caller_identity(request)
    if identity.user_id is None:
        raise ApiError(401, None, "sign in (Bearer token) or use an API key")
    return identity
