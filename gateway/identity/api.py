"""``/api/v2/auth``: accounts, tokens and API keys.

- ``register`` and ``login`` give an access token (15 minutes) and a refresh token (7 days);
  emails are compared in NFKC form, case-folded, so look-alike spellings are one account, and
  each account may try ``LOGINS_PER_MINUTE`` sign-ins a minute;
- ``refresh`` trades a refresh token, once, for a new pair;
- ``service-token`` gives an agent, authenticated by its API key, a service token (1 hour) that
  ends with the key;
- ``api-keys`` makes (shown once, at most ``apikeys.MAX_KEYS`` active per plan), lists and revokes
  the caller's keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, EmailStr, Field, field_validator

from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity import apikeys, audit
from gpubroker.gateway.identity.access import Access, Requires, caller
from gpubroker.gateway.identity.emails import canonical_email
from gpubroker.gateway.identity.plans import Permission, Plan
from gpubroker.gateway.identity.tokens import AuthError
from gpubroker.gateway.models import ApiKey, RefreshToken, User
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["auth"])
ANYONE = Requires(Access.ANYONE)
ACCOUNT = Requires(Permission.ACCOUNT)
MIN_PASSWORD = 12
LOGINS_PER_MINUTE = 5
# Checked against when the email is unknown, so a login takes as long either way.
_UNKNOWN_USER_PASSWORD = make_password(None)


class Credentials(Schema):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Annotated[str, Field(min_length=MIN_PASSWORD, max_length=256)]

    @field_validator("email")
    @classmethod
    def _canonical(cls, email: str) -> str:
        return canonical_email(email)


class RefreshBody(Schema):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class TokenPair(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    plan: str


class ServiceToken(Schema):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    plan: str


class NewKeyBody(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]


class KeyOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewKey(KeyOut):
    key: str = Field(description="Shown once: store it now, it cannot be read again.")


@router.post(
    "/register", response={201: TokenPair, 409: Error, 422: Error}, auth=ANYONE, summary="Create a Free account"
)
async def register(request: HttpRequest, body: Credentials) -> Status[dict[str, Any]]:
    """Create a Free account; the answer holds an access token (15 minutes) and a refresh token
    (7 days)."""
    try:
        user = await User.objects.acreate(email=body.email, password=make_password(body.password))
    except IntegrityError:
        raise ApiError(409, "email", "an account with this email exists; sign in instead") from None
    await audit.record(request, f"user:{user.pk}", "register")
    return Status(201, await _pair(user))


@router.post("/login", response={200: TokenPair, 401: Error, 422: Error, 429: Error}, auth=ANYONE, summary="Sign in")
async def login(request: HttpRequest, body: Credentials) -> dict[str, Any]:
    """Sign in with email and password; at most 5 attempts a minute per account."""
    attempt = await current().limiter.check(f"login:{body.email}", LOGINS_PER_MINUTE, window_ms=60_000)
    if not attempt.allowed:
        await audit.record(request, "anonymous", "login", body.email.split("@")[-1], outcome="throttled")
        raise ApiError(429, None, f"too many sign-ins for this account; retry after {attempt.retry_after_s:.0f}s")
    user = await User.objects.filter(email=body.email, is_active=True).afirst()
    valid = await sync_to_async(check_password)(body.password, user.password if user else _UNKNOWN_USER_PASSWORD)
    if user is None or not valid:
        await audit.record(request, "anonymous", "login", body.email.split("@")[-1], outcome="denied")
        raise ApiError(401, None, "wrong email or password")
    await audit.record(request, f"user:{user.pk}", "login")
    return await _pair(user)


@router.post(
    "/refresh", response={200: TokenPair, 401: Error, 422: Error}, auth=ANYONE, summary="Trade a refresh token"
)
async def refresh_tokens(request: HttpRequest, body: RefreshBody) -> dict[str, Any]:
    """Trade a refresh token, once, for a new access and refresh token."""
    try:
        claims = current().tokens.verify(body.refresh_token, "refresh")
    except AuthError as exc:
        raise ApiError(401, "refresh_token", str(exc)) from None
    used = await RefreshToken.objects.filter(jti=claims.jti, revoked=False).aupdate(revoked=True)
    user = await User.objects.filter(pk=int(claims.subject.removeprefix("user:")), is_active=True).afirst()
    if not used or user is None:
        await audit.record(request, claims.subject, "refresh", outcome="denied")
        raise ApiError(401, "refresh_token", "the refresh token was already used or revoked; sign in again")
    return await _pair(user)


@router.post(
    "/service-token",
    response={200: ServiceToken, 401: Error},
    auth=ACCOUNT,
    summary="A service token for an agent's API key",
)
async def create_service_token(request: HttpRequest) -> dict[str, Any]:
    """A service token (1 hour) for an agent authenticated by its API key; it ends when the key
    is revoked."""
    identity = caller(request)
    if identity.kind != "apikey":
        raise ApiError(401, None, "authenticate with the agent's API key (X-API-Key)")
    token, claims = current().tokens.issue(
        f"user:{identity.user_id}", identity.plan.value, "service", key_id=identity.key_id
    )
    await audit.record(request, identity.subject, "service-token")
    return {"access_token": token, "expires_in": current().settings.service_token_ttl_s, "plan": claims.plan}


@router.post(
    "/api-keys",
    response={201: NewKey, 401: Error, 409: Error, 422: Error},
    auth=ACCOUNT,
    summary="Make an API key (shown once)",
)
async def create_api_key(request: HttpRequest, body: NewKeyBody) -> Status[dict[str, Any]]:
    """Make an API key; the key is shown once. Plans hold at most 5 (Free), 20 (Pro) or 100
    (Enterprise) active keys."""
    identity = caller(request)
    most = apikeys.MAX_KEYS.get(identity.plan, 0)
    if await ApiKey.objects.filter(user_id=identity.user_id, revoked_at__isnull=True).acount() >= most:
        raise ApiError(409, None, f"the {identity.plan.value} plan holds at most {most} active API keys; revoke one")
    key, prefix, digest = apikeys.new_key()
    row = await ApiKey.objects.acreate(user_id=identity.user_id, name=body.name, prefix=prefix, digest=digest)
    await audit.record(request, identity.subject, "api-key.create", prefix)
    return Status(201, {**_key_json(row), "key": key})


@router.get(
    "/api-keys",
    response={200: list[KeyOut], 401: Error},
    auth=ACCOUNT,
    summary="Your API keys (never the keys themselves)",
)
async def list_api_keys(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's API keys (their prefixes, never the keys)."""
    identity = caller(request)
    return [_key_json(row) async for row in ApiKey.objects.filter(user_id=identity.user_id).order_by("pk")]


@router.delete(
    "/api-keys/{key_id}", response={204: None, 401: Error, 404: Error}, auth=ACCOUNT, summary="Revoke an API key"
)
async def revoke_api_key(request: HttpRequest, key_id: int) -> Status[None]:
    """Revoke one of the caller's API keys, and every service token made from it."""
    identity = caller(request)
    row = await ApiKey.objects.filter(pk=key_id, user_id=identity.user_id).afirst()
    if row is None:
        raise ApiError(404, "key_id", f"you have no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await row.asave(update_fields=["revoked_at"])
    current().accounts.forget_key(row.digest, row.pk)
    await audit.record(request, identity.subject, "api-key.revoke", row.prefix)
    return Status(204, None)


async def _pair(user: User) -> dict[str, Any]:
    tokens = current().tokens
    plan = Plan(user.plan).value
    access, _ = tokens.issue(f"user:{user.pk}", plan, "access")
    refresh_token, claims = tokens.issue(f"user:{user.pk}", plan, "refresh")
    await RefreshToken.objects.acreate(
        jti=claims.jti, user=user, expires_at=datetime.fromtimestamp(claims.expires_at, UTC)
    )
    ttl = current().settings.access_token_ttl_s
    return {"access_token": access, "refresh_token": refresh_token, "expires_in": ttl, "plan": plan}


def _key_json(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.pk,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }
