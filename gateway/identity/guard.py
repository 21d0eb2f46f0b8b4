"""The guard in front of every request: CORS, authentication, permission, rate limit, and the
security and rate-limit headers on every answer.

It runs in the ASGI application before the fast path and Django, so a cached answer is never
served to a caller who may not see it or who is over their limit. Identities: a Bearer JWT
(access or service token), an ``X-API-Key``, the operator's key, or, with neither, an anonymous
visitor known by IP address at the Free plan's limit (FR-4.5). A WebSocket passes its token as
``?token=``. The identity is left in ``scope["gpubroker.identity"]`` for the views.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gpubroker.core.ratelimit import SlidingWindowLimiter
from gpubroker.core.settings import Settings
from gpubroker.gateway.identity.apikeys import ApiKeys
from gpubroker.gateway.identity.plans import PERMISSIONS, REQUESTS_PER_SECOND, Permission, Plan, cheapest_with
from gpubroker.gateway.identity.routes import Access, advanced_parameter, need
from gpubroker.gateway.identity.tokens import AuthError, Claims, Tokens

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-resource-policy", b"same-site"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
API_HEADERS = [*SECURITY_HEADERS, API_CSP]
DOCS_HEADERS = SECURITY_HEADERS
DOCS_PATH = "/api/v2/docs"  # the browsable OpenAPI page loads its own scripts and styles
REMEMBERED_TOKENS = 10_000


@dataclass(frozen=True)
class Identity:
    kind: str
    """anonymous, user (access token), service (service token), apikey or operator"""
    subject: str
    """ip:<address>, user:<id>, apikey:<prefix> or operator: what is rate limited and audited."""
    plan: Plan
    user_id: int | None = None

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.plan]


class Guard:
    def __init__(self, settings: Settings, tokens: Tokens, api_keys: ApiKeys, limiter: SlidingWindowLimiter) -> None:
        self._settings = settings
        self._tokens = tokens
        self._api_keys = api_keys
        self._limiter = limiter
        self._origins = frozenset(origin.rstrip("/") for origin in settings.cors_origins)
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._operator_key = settings.admin_api_key.encode() if settings.admin_api_key else None
        self._operator = Identity("operator", "operator", Plan.ADMIN)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: App) -> None:
        """Refuse, or pass the request on to ``app`` with the headers every answer must carry in
        ``scope["gpubroker.headers"]`` (added by the fast path itself, by a wrapper otherwise)."""
        websocket = scope["type"] == "websocket"
        method = "WEBSOCKET" if websocket else scope["method"]
        headers = _wanted_headers(scope["headers"])
        cors = self._cors_headers(headers.get(b"origin", b"").decode("latin-1"))
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            return await self._preflight(send, cors)
        needed = need(method, scope["path"])
        extra = list(cors)
        if needed is not Access.OPEN:
            try:
                identity = await self._identify(scope, headers)
            except AuthError as exc:
                return await _refuse(scope, send, 401, str(exc), [(b"www-authenticate", b"Bearer"), *extra])
            scope["gpubroker.identity"] = identity
            refusal = _refusal(identity, needed, scope)
            if refusal is not None:
                return await _refuse(scope, send, 403, refusal, extra)
            limit = REQUESTS_PER_SECOND[identity.plan]
            if limit is not None:
                decision = await self._limiter.check(identity.subject, limit)
                extra += [
                    (b"x-ratelimit-limit", str(limit).encode()),
                    (b"x-ratelimit-remaining", str(decision.remaining).encode()),
                    (b"x-ratelimit-reset", f"{decision.reset_s:.3f}".encode()),
                ]
                if not decision.allowed:
                    retry = [(b"retry-after", str(max(1, math.ceil(decision.retry_after_s))).encode())]
                    message = (
                        f"rate limit of {limit} requests per second exceeded; retry after {decision.retry_after_s:.2f}s"
                    )
                    return await _refuse(scope, send, 429, message, [*extra, *retry])
        if websocket:
            return await app(scope, receive, send)
        base = DOCS_HEADERS if scope["path"].startswith(DOCS_PATH) else API_HEADERS
        scope["gpubroker.headers"] = [*base, *extra] if extra else base
        await app(scope, receive, send)

    async def _identify(self, scope: Scope, headers: dict[bytes, bytes]) -> Identity:
        """Who is asking: an API key first, then a Bearer token, else an anonymous address."""
        raw_key = headers.get(b"x-api-key", b"")
        if self._operator_key is not None and hmac.compare_digest(raw_key, self._operator_key):
            return self._operator
        key = raw_key.decode("latin-1").strip()
        token = ""
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError("use 'Authorization: Bearer <token>' or 'X-API-Key: <key>'")
            token = value.strip()
        if scope["type"] == "websocket" and not token:
            token = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("token", "")
        if key:
            return await self._key_identity(key)
        if token:
            claims = self._claims(token)
            kind = "service" if claims.type == "service" else "user"
            user_id = int(claims.subject.removeprefix("user:")) if claims.subject.startswith("user:") else None
            return Identity(kind, claims.subject, Plan(claims.plan), user_id)
        return Identity("anonymous", f"ip:{self._client(scope, headers)}", Plan.ANONYMOUS)

    async def _key_identity(self, key: str) -> Identity:
        owner = await self._api_keys.owner(key)
        if owner is None:
            raise AuthError("the API key is unknown or revoked")
        return Identity("apikey", f"apikey:{owner.prefix}", Plan(owner.plan), owner.user_id)

    def _claims(self, token: str) -> Claims:
        """Verified tokens are remembered until they expire: an RSA check per request is costly."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._tokens.verify(token, ("access", "service"))
            self._verified[token] = claims
            if len(self._verified) > REMEMBERED_TOKENS:
                self._verified.popitem(last=False)
        if claims.expires_at <= time.time():
            self._verified.pop(token, None)
            raise AuthError("the token has expired")
        return claims

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        if self._settings.trust_forwarded_for and b"x-forwarded-for" in headers:
            return headers[b"x-forwarded-for"].decode("latin-1").split(",")[0].strip()
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    def _cors_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if not origin or origin.rstrip("/") not in self._origins:
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining"),
        ]

    async def _preflight(self, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        if not cors:
            return await _send_json(send, 403, {"detail": [{"field": None, "message": "origin not allowed"}]}, [])
        allowed = [
            *cors,
            (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
            (b"access-control-allow-headers", b"Authorization, Content-Type, X-API-Key, If-None-Match"),
            (b"access-control-max-age", b"600"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": [*SECURITY_HEADERS, *allowed]})
        await send({"type": "http.response.body", "body": b""})


_WANTED = frozenset({b"authorization", b"x-api-key", b"origin", b"access-control-request-method", b"x-forwarded-for"})


def _wanted_headers(raw: Any) -> dict[bytes, bytes]:
    """The few request headers the guard reads, without building a dict of them all."""
    return {name: value for name, value in raw if name in _WANTED}


def add_headers(scope: Scope, send: Send) -> Send:
    """``send``, adding the headers the guard left in the scope to the response's start."""
    added = scope.get("gpubroker.headers")
    if not added:
        return send

    async def send_with_headers(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *added]}
        await send(message)

    return send_with_headers


def _refusal(identity: Identity, needed: Permission | Access, scope: Scope) -> str | None:
    """Why the identity may not make this request, or None when it may."""
    if not isinstance(needed, Permission):
        return None
    if not identity.may(needed):
        return f"this needs the {cheapest_with(needed).value} plan or higher (you have {identity.plan.value})"
    if scope["type"] == "http" and not identity.may(Permission.QUERY_OFFERS):
        advanced = advanced_parameter(scope["path"], parse_qsl(scope["query_string"].decode("latin-1")))
        if advanced is not None:
            plan = cheapest_with(Permission.QUERY_OFFERS).value
            return f"the {advanced!r} parameter needs the {plan} plan or higher (you have {identity.plan.value})"
    return None


async def _refuse(scope: Scope, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4000 + status, "reason": message[:120]})
        return
    await _send_json(send, status, {"detail": [{"field": None, "message": message}]}, headers)


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    content = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *SECURITY_HEADERS,
                API_CSP,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
