"""Authentication, plans, rate limits and hardening, through the whole ASGI application."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.hashers import make_password

from gpubroker.core.ratelimit import SlidingWindowLimiter
from gpubroker.gateway.identity import apikeys
from gpubroker.gateway.identity.keys import SigningKey
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.identity.tokens import AUDIENCE, ISSUER
from gpubroker.gateway.models import ApiKey, AuditEvent, User
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import AsgiClient, asgi_client, offer

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct horse battery staple"


async def make_user(plan: Plan, email: str | None = None) -> tuple[User, str]:
    """A user of the plan and an API key of theirs."""
    user = await User.objects.acreate(
        email=email or f"{plan.value}-{time.monotonic_ns()}@example.com",
        password=make_password(PASSWORD),
        plan=plan.value,
    )
    key, prefix, digest = apikeys.new_key()
    await ApiKey.objects.acreate(user=user, name="test", prefix=prefix, digest=digest)
    return user, key


def with_key(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-api-key", key.encode())]


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


@pytest.fixture
def client(runtime: GatewayRuntime) -> AsgiClient:
    return asgi_client(runtime)


async def test_register_login_refresh_and_use_a_token(client: AsgiClient) -> None:
    status, _, body = await client.request(
        "POST", "/api/v2/auth/register", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert status == 201 and orjson.loads(body)["plan"] == "free"
    status, _, body = await client.request(
        "POST", "/api/v2/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    pair = orjson.loads(body)
    assert status == 200 and pair["token_type"] == "Bearer"
    status, _, _ = await client.get("/api/v2/auth/api-keys", headers=bearer(pair["access_token"]))
    assert status == 200
    status, _, body = await client.request(
        "POST", "/api/v2/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert status == 200 and orjson.loads(body)["access_token"]
    status, _, _ = await client.request("POST", "/api/v2/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert status == 401, "a refresh token works once"
    named = await client.request(
        "POST", "/api/v2/auth/api-keys", json={"name": "a\x00b"}, headers=bearer(pair["access_token"])
    )
    assert named[0] == 400 and orjson.loads(named[2])["detail"][0]["field"] == "body"
    status, _, _ = await client.request(
        "POST", "/api/v2/auth/login", json={"email": "ada@example.com", "password": "x" * 12}
    )
    assert status == 401
    actions = [e.action async for e in AuditEvent.objects.order_by("pk")]
    assert actions[:2] == ["register", "login"] and "refresh" in actions


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: int, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"user:{user_id}", "plan": "admin", "typ": "access"}
    return {**claims, "jti": "x", "iat": now, "exp": now + 600, **changes}


async def test_forged_expired_and_foreign_tokens_are_401(client: AsgiClient, runtime: GatewayRuntime) -> None:
    user, _ = await make_user(Plan.FREE)
    good, _ = runtime.tokens.issue(f"user:{user.pk}", "free", "access")
    assert (await client.get("/api/v2/auth/api-keys", headers=bearer(good)))[0] == 200

    kid, private = runtime.keys.signing
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload, signature = good.split(".")
    elevated = _b64(orjson.dumps({**jwt.decode(good, options={"verify_signature": False}), "plan": "admin"}))
    hs256_header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}))
    hs256_body = _b64(orjson.dumps(_claims(user.pk)))
    hs256_mac = hmac.new(public_pem, f"{hs256_header}.{hs256_body}".encode(), hashlib.sha256).digest()
    stranger = SigningKey.new()
    forged = {
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "tampered claims": f"{header}.{elevated}.{signature}",
        "expired": jwt.encode(_claims(user.pk, exp=int(time.time()) - 5), private, "RS256", headers={"kid": kid}),
        "alg none": f"{_b64(orjson.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid}))}.{hs256_body}.",
        "HS256 with the public key": f"{hs256_header}.{hs256_body}.{_b64(hs256_mac)}",
        "unknown kid": jwt.encode(_claims(user.pk), stranger.private_key, "RS256", headers={"kid": stranger.kid}),
        "no kid": jwt.encode(_claims(user.pk), private, "RS256"),
        "wrong audience": jwt.encode(_claims(user.pk, aud="other"), private, "RS256", headers={"kid": kid}),
        "refresh as access": runtime.tokens.issue(f"user:{user.pk}", "free", "refresh")[0],
        "not a JWT": "hello",
    }
    for name, token in forged.items():
        status, headers, body = await client.get("/api/v2/auth/api-keys", headers=bearer(token))
        assert status == 401, name
        assert headers[b"www-authenticate"] == b"Bearer" and token not in body.decode()


async def test_a_revoked_api_key_is_401(client: AsgiClient) -> None:
    _, key = await make_user(Plan.PRO)
    status, _, body = await client.get("/api/v2/auth/api-keys", headers=with_key(key))
    assert status == 200
    [listed] = orjson.loads(body)
    assert key not in body.decode() and key.startswith(listed["prefix"])
    status, _, _ = await client.request("DELETE", f"/api/v2/auth/api-keys/{listed['id']}", headers=with_key(key))
    assert status == 204
    assert (await client.get("/api/v2/auth/api-keys", headers=with_key(key)))[0] == 401
    assert (await client.get("/api/v2/gpus", headers=with_key("gpb_made-up")))[0] == 401


async def test_rotated_keys_keep_verifying_until_their_tokens_expire(
    client: AsgiClient, runtime: GatewayRuntime
) -> None:
    user, _ = await make_user(Plan.FREE)
    before, _ = runtime.tokens.issue(f"user:{user.pk}", "free", "access")
    old_kid = runtime.keys.signing[0]
    new_kid = await runtime.keys.rotate()
    after, _ = runtime.tokens.issue(f"user:{user.pk}", "free", "access")
    assert jwt.get_unverified_header(after)["kid"] == new_kid != old_kid
    for token in (before, after):
        assert (await client.get("/api/v2/auth/api-keys", headers=bearer(token)))[0] == 200
    await runtime.keys.rotate(now=datetime.now(UTC) + timedelta(days=365))
    assert runtime.keys.verifying(old_kid) is None  # retired once every token it signed has expired


CALLS: list[tuple[str, str, bytes, Any, Plan]] = [
    # method, path, query, JSON body, the cheapest plan allowed
    ("GET", "/api/v2/providers", b"", None, Plan.ANONYMOUS),
    ("GET", "/api/v2/providers", b"gpu=H100&sort=-price", None, Plan.ANONYMOUS),
    ("GET", "/api/v2/providers", b"min_gpus=8", None, Plan.PRO),
    ("GET", "/api/v2/providers", b"sort=topsis", None, Plan.PRO),
    ("GET", "/api/v2/gpus", b"", None, Plan.ANONYMOUS),
    ("GET", "/api/v2/providers/ranking", b"", None, Plan.PRO),
    ("POST", "/api/v2/providers/query", b"", {}, Plan.PRO),
    ("POST", "/api/v2/providers/decide", b"", {}, Plan.PRO),
    ("GET", "/api/v2/analytics/price-history", b"", None, Plan.PRO),
    ("GET", "/api/v2/users/favorites", b"", None, Plan.FREE),
    ("GET", "/api/v2/auth/api-keys", b"", None, Plan.FREE),
    ("GET", "/api/v2/alerts", b"", None, Plan.PRO),
    ("GET", "/api/v2/webhooks", b"", None, Plan.ENTERPRISE),
    ("GET", "/api/v2/providers/config/integrations", b"", None, Plan.ENTERPRISE),
    ("GET", "/api/v2/admin/audit", b"", None, Plan.ADMIN),
]
ORDER = list(Plan)


async def test_each_plan_gets_exactly_its_permissions(runtime: GatewayRuntime, publish) -> None:  # type: ignore[no-untyped-def]
    await publish([offer("vastai", "1", "H100", "2.0")])
    keys = {plan: (await make_user(plan))[1] for plan in Plan if plan is not Plan.ANONYMOUS}
    for index, plan in enumerate(ORDER):
        client = asgi_client(runtime, client=f"10.0.0.{index}")  # anonymous callers are limited by address
        for method, path, query, body, cheapest in CALLS:
            headers = [] if plan is Plan.ANONYMOUS else with_key(keys[plan])
            status, _, content = await client.request(method, path, query=query, json=body, headers=headers)
            allowed = ORDER.index(plan) >= ORDER.index(cheapest)
            if allowed:
                assert status not in (401, 403), (plan, method, path, query, content)
                assert status < 500
            else:
                assert status in (401, 403), (plan, method, path, query, status)
                assert cheapest.value in orjson.loads(content)["detail"][0]["message"] or status == 401


async def test_limits_answer_429_with_retry_after_and_headers(runtime: GatewayRuntime) -> None:
    client = asgi_client(runtime, client="192.0.2.7")
    answers = [await client.get("/api/v2/gpus") for _ in range(25)]
    statuses = [status for status, _, _ in answers]
    # Ten a second, give or take the one that crossing into the next second lets through.
    assert 10 <= statuses.count(200) <= 11 and statuses[-1] == 429
    _, headers, _ = answers[-1]
    assert int(headers[b"retry-after"]) >= 1 and headers[b"x-ratelimit-limit"] == b"10"
    assert headers[b"x-ratelimit-remaining"] == b"0"
    other = asgi_client(runtime, client="192.0.2.8")
    assert (await other.get("/api/v2/gpus"))[0] == 200, "limits are per identity"
    assert (await client.get("/health"))[0] == 200, "probes are never limited"


async def test_sliding_window_smooths_the_window_edge() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(None, clock=lambda: now[0])
    assert sum([(await limiter.check("a", 10)).allowed for _ in range(10)]) == 10
    now[0] += 1.0  # the next window: the previous one still counts fully at its very start
    refused = await limiter.check("a", 10)
    assert not refused.allowed and 0 < refused.retry_after_s <= 1
    now[0] += 0.5  # half the previous window has slid out: room for about five more
    assert sum([(await limiter.check("a", 10)).allowed for _ in range(10)]) == 5


async def test_security_headers_and_cors(runtime: GatewayRuntime, clean_env: pytest.MonkeyPatch) -> None:
    object.__setattr__(runtime.guard, "_origins", frozenset({"https://app.example.com"}))
    client = asgi_client(runtime)
    _, headers, _ = await client.get("/api/v2/gpus", headers=[(b"origin", b"https://app.example.com")])
    assert headers[b"x-content-type-options"] == b"nosniff" and headers[b"x-frame-options"] == b"DENY"
    assert b"default-src 'none'" in headers[b"content-security-policy"]
    assert headers[b"access-control-allow-origin"] == b"https://app.example.com"
    _, headers, _ = await client.get("/api/v2/gpus", headers=[(b"origin", b"https://evil.example.com")])
    assert b"access-control-allow-origin" not in headers
    preflight = [(b"origin", b"https://app.example.com"), (b"access-control-request-method", b"POST")]
    status, headers, _ = await client.request("OPTIONS", "/api/v2/providers/query", headers=preflight)
    assert status == 204 and b"X-API-Key" in headers[b"access-control-allow-headers"]
    denied = [(b"origin", b"https://evil.example.com"), (b"access-control-request-method", b"POST")]
    assert (await client.request("OPTIONS", "/api/v2/providers/query", headers=denied))[0] == 403


async def test_websocket_connections_authenticate_with_a_token_or_an_api_key(runtime: GatewayRuntime) -> None:
    app = asgi_client(runtime).app
    user, key = await make_user(Plan.PRO)
    token, _ = runtime.tokens.issue(f"user:{user.pk}", "pro", "access")

    async def connect(query: bytes) -> tuple[dict[str, Any], Any]:
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "websocket",
            "path": "/ws/providers/",
            "query_string": query,
            "headers": [],
            "client": ("198.51.100.1", 1),
        }

        messages = [{"type": "websocket.disconnect", "code": 1000}, {"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[-1] if sent[-1]["type"] == "websocket.close" else sent[0], scope.get("gpubroker.identity")

    refused, _ = await connect(b"token=not-a-token")  # accepted, then closed: the code reaches the client
    assert refused["type"] == "websocket.close" and refused["code"] == 4401
    accepted, identity = await connect(b"token=" + token.encode())
    assert accepted["type"] == "websocket.accept"
    assert identity.subject == f"user:{user.pk}" and identity.plan is Plan.PRO
    _, anonymous = await connect(b"")
    assert anonymous.plan is Plan.ANONYMOUS
    accepted, identity = await connect(b"token=" + key.encode())  # as docs/api.md says: a browser sets no header
    assert accepted["type"] == "websocket.accept"
    assert identity.subject == f"user:{user.pk}" and identity.plan is Plan.PRO and identity.key_id is not None
    refused, _ = await connect(b"token=gpb_made-up")
    assert refused["type"] == "websocket.close" and refused["code"] == 4401
