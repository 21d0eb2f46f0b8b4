"""The guard in front of every request: what the route needs, who is asking, whether they may,
how fast, and the security and rate-limit headers on every answer.

It runs in the ASGI application before the fast path and Django, so a cached answer is never
served to a caller who may not see it or who is over their limit. The route's need is read from
the endpoint's own declaration (``routes.RouteTable``); the method is normalised first, and a
route or method that declares nothing is refused. Identities: a Bearer JWT (access, agent or
platform service token), an ``X-API-Key``, the operator's key, or, with neither, an anonymous
visitor known by address (in embedded mode, one from this machine itself is its own user:
``local``). Tokens and keys are checked against the account on use
(``accounts``). A WebSocket passes its token or API key as ``?token=`` and is refused, after the
handshake, with close code 4000 + the HTTP status. The identity is left in
``scope["gpubroker.identity"]`` for the views.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gpubroker.core.ratelimit import SlidingWindowLimiter
from gpubroker.core.settings import Settings
from gpubroker.gateway.db import RETRY_AFTER_S, DatabaseUnavailable
from gpubroker.gateway.identity import apikeys
from gpubroker.gateway.identity.access import Refusal, Requires
from gpubroker.gateway.identity.accounts import Accounts
from gpubroker.gateway.identity.callers import Identity
from gpubroker.gateway.identity.local import LocalOwner, is_local_caller
from gpubroker.gateway.identity.plans import REQUESTS_PER_SECOND, Plan
from gpubroker.gateway.identity.requests import MAX_BODY_BYTES, read_body, request_problem
from gpubroker.gateway.identity.routes import WEBSOCKET, Denied, RouteTable
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
DOCS_CSP = (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
DOCS_HEADERS = [*SECURITY_HEADERS, DOCS_CSP]
DOCS_PATH = "/api/v2/docs"  # the browsable OpenAPI page loads its own scripts and styles
PAGE_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
)
PAGE_HEADERS = [*SECURITY_HEADERS, PAGE_CSP]
PAGE_PATHS = ("/", "/ui/")  # the web page: its own scripts and styles, and calls to this origin only
REMEMBERED_TOKENS = 10_000

FAILED_AUTH_LIMIT = 20
FAILED_AUTH_WINDOW_MS = 60_000
"""Failed authentications an address may make a minute, across instances; past that its
credentials are not even looked up until the window lets it try again."""


class Guard:
    def __init__(
        self,
        settings: Settings,
        tokens: Tokens,
        accounts: Accounts,
        limiter: SlidingWindowLimiter,
        routes: Callable[[], RouteTable],
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._accounts = accounts
        self._limiter = limiter
        self._routes_factory = routes
        self._routes: RouteTable | None = None
        self._origins = frozenset(origin.rstrip("/") for origin in settings.cors_origins)
        self._verified: OrderedDict[str, Claims] = OrderedDict()
        self._blocked: OrderedDict[str, float] = OrderedDict()
        self._operator_key = settings.admin_api_key.encode() if settings.admin_api_key else None
        self._operator = Identity("operator", "operator", Plan.ADMIN)
        self._local = None if settings.plans_enforced else LocalOwner()
        self.draining = False
        """Set while the server drains before it stops: every answer then closes its connection."""

    @property
    def routes(self) -> RouteTable:
        """Built on first use: the URL configuration imports every endpoint."""
        if self._routes is None:
            self._routes = self._routes_factory()
        return self._routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: App) -> None:
        """Refuse, or pass the request on to ``app`` with the headers every answer must carry in
        ``scope["gpubroker.headers"]`` (added by the fast path itself, by a wrapper otherwise)."""
        websocket = scope["type"] == "websocket"
        if websocket:
            method = WEBSOCKET
        else:
            method = scope["method"] = scope["method"].upper()  # Django would upper-case it anyway
        headers = _wanted_headers(scope["headers"])
        request_id = scope["gpubroker.request_id"] = _request_id(headers.get(b"x-request-id"))
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors = self._cors_headers(origin)
        tagged = [(b"x-request-id", request_id.encode()), *cors]
        if self.draining:
            tagged.append((b"connection", b"close"))
        problem = request_problem(scope, headers)
        if problem is not None:
            return await _refuse(scope, receive, send, problem.status, problem.message, tagged)
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            return await self._preflight(send, cors, tagged)
        requires = self.routes.lookup(method, scope["path"])
        if isinstance(requires, Denied):
            allow = [(b"allow", ", ".join(requires.allow).encode())] if requires.allow else []
            return await _refuse(scope, receive, send, requires.status, requires.message, [*allow, *tagged])
        extra = list(tagged)
        if requires.identifies:
            try:
                identity = await self._identify(scope, headers)
            except AuthError as exc:
                return await self._refuse_credentials(scope, receive, send, headers, str(exc), extra)
            except _TooManyFailures as exc:
                retry = [(b"retry-after", str(exc.retry_after_s).encode())]
                return await _refuse(scope, receive, send, 429, str(exc), [*retry, *extra])
            except DatabaseUnavailable:  # a key or an account could not be looked up
                retry = [(b"retry-after", str(RETRY_AFTER_S).encode())]
                message = "the database is unavailable, so credentials cannot be checked; retry shortly"
                return await _refuse(scope, receive, send, 503, message, [*retry, *extra])
            scope["gpubroker.identity"] = identity
            refusal = self._refusal(requires, identity, scope)
            if refusal is not None:
                challenge = [(b"www-authenticate", b"Bearer")] if refusal.status == 401 else []
                return await _refuse(scope, receive, send, refusal.status, refusal.message, [*challenge, *extra])
            limit = REQUESTS_PER_SECOND[identity.plan]
            if limit is not None:
                decision = await self._limiter.check(identity.account, limit)
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
                    return await _refuse(scope, receive, send, 429, message, [*extra, *retry])
        if websocket:
            return await app(scope, receive, send)
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            body = await read_body(receive, MAX_BODY_BYTES)
            if body is None:
                message = f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB"
                return await _refuse(scope, receive, send, 413, message, extra)
            receive = _replay(body, receive)
        base = _headers_for(scope["path"])
        scope["gpubroker.headers"] = [*base, *extra] if extra else base
        await app(scope, receive, send)

    def _refusal(self, requires: Requires, identity: Identity, scope: Scope) -> Refusal | None:
        query = parse_qsl(scope["query_string"].decode("latin-1")) if requires.parameters is not None else ()
        return requires.refusal(identity, query)

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
        if scope["type"] == "websocket" and not token and not key:  # a browser's WebSocket sets no headers
            given = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("token", "").strip()
            if given.startswith(apikeys.PREFIX):
                key = given  # ?token= takes an API key as well as an access token
            else:
                token = given
        if not key and not token:
            if self._local is not None and is_local_caller(scope, headers):
                return await self._local.identity()
            return Identity("anonymous", f"ip:{self._client(scope, headers)}", Plan.ANONYMOUS)
        self._check_not_blocked(self._client(scope, headers))
        if key:
            owner = await self._accounts.by_key(key)
            if owner is None:
                raise AuthError("the API key is unknown or revoked")
            return Identity("apikey", f"user:{owner.user_id}", owner.plan, owner.user_id, owner.key_id)
        return await self._token_identity(self._claims(token))

    async def identity_for_token(self, token: str) -> Identity:
        """Who a Bearer token stands for now (an ``AuthError`` says why it stands for nobody)."""
        return await self._token_identity(self._claims(token))

    async def _token_identity(self, claims: Claims) -> Identity:
        """The token's account as it is now: a revoked key, a closed account or a new plan counts."""
        if claims.subject.startswith("service:"):
            if claims.type != "service":
                raise AuthError("a platform identity signs in with a service token")
            return Identity("platform", claims.subject, Plan.ADMIN)
        if not claims.subject.startswith("user:"):
            raise AuthError("the token names no account")
        user_id = int(claims.subject.removeprefix("user:"))
        if claims.key_id is not None:
            owner = await self._accounts.by_key_id(claims.key_id)
            if owner is None or owner.user_id != user_id:
                raise AuthError("the API key this token was made from is revoked")
            return Identity("agent", claims.subject, owner.plan, user_id, owner.key_id)
        plan = await self._accounts.plan(user_id)
        if plan is None:
            raise AuthError("the account no longer exists or is disabled")
        return Identity("user", claims.subject, plan, user_id)

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

    def _check_not_blocked(self, client: str) -> None:
        until = self._blocked.get(client)
        if until is not None:
            if until > time.monotonic():
                raise _TooManyFailures(math.ceil(until - time.monotonic()))
            del self._blocked[client]

    async def _refuse_credentials(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], message: str, extra: list[Any]
    ) -> None:
        """A 401, counted against the address: past ``FAILED_AUTH_LIMIT`` a minute, a 429."""
        client = self._client(scope, headers)
        decision = await self._limiter.check(f"authfail:{client}", FAILED_AUTH_LIMIT, window_ms=FAILED_AUTH_WINDOW_MS)
        if not decision.allowed:
            retry_s = max(1, math.ceil(decision.retry_after_s))
            self._blocked[client] = time.monotonic() + retry_s
            if len(self._blocked) > REMEMBERED_TOKENS:
                self._blocked.popitem(last=False)
            log.warning("authentication: %s failed too often; refused for %ds", client, retry_s)
            refusal = str(_TooManyFailures(retry_s))
            return await _refuse(scope, receive, send, 429, refusal, [(b"retry-after", str(retry_s).encode()), *extra])
        await _refuse(scope, receive, send, 401, message, [(b"www-authenticate", b"Bearer"), *extra])

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

    async def _preflight(self, send: Send, cors: list[tuple[bytes, bytes]], tagged: list[tuple[bytes, bytes]]) -> None:
        if not cors:
            return await _send_json(send, 403, "origin not allowed", tagged, None)
        allowed = [
            *tagged,
            (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
            (b"access-control-allow-headers", b"Authorization, Content-Type, X-API-Key, If-None-Match, Last-Event-ID"),
            (b"access-control-max-age", b"600"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": [*SECURITY_HEADERS, *allowed]})
        await send({"type": "http.response.body", "body": b""})


class _TooManyFailures(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins from this address; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


_WANTED = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"origin",
        b"access-control-request-method",
        b"x-forwarded-for",
        b"content-length",
        b"x-request-id",
    }
)
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def _headers_for(path: str) -> list[tuple[bytes, bytes]]:
    if path.startswith(DOCS_PATH):
        return DOCS_HEADERS
    if path == PAGE_PATHS[0] or path.startswith(PAGE_PATHS[1]):
        return PAGE_HEADERS
    return API_HEADERS


def _request_id(given: bytes | None) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token, else a new one: echoed in the
    answer's header and in every error body, so a report can be matched with the logs."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given.decode()
    return secrets.token_hex(8)


def _wanted_headers(raw: Any) -> dict[bytes, bytes]:
    """The few request headers the guard reads, without building a dict of them all."""
    return {name: value for name, value in raw if name in _WANTED}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then waits on the real one (for the
    client's disconnect)."""
    sent = False

    async def replayed() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


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


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        # Accepted first so the client sees the documented close code, not an HTTP 403.
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 4000 + status, "reason": message[:120]})
        return
    await _send_json(send, status, message, headers, scope.get("gpubroker.request_id"))


async def _send_json(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]], request_id: str | None
) -> None:
    content = orjson.dumps({"detail": [{"field": None, "message": message}], "request_id": request_id})
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
