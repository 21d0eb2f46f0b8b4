"""Issuing and verifying JWTs: RS256 only, ``kid`` required and known, audience, issuer,
expiry and token type checked. Anything else is an ``AuthError`` (a 401)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from gpubroker.gateway.identity.keys import KeyRing

ISSUER = "gpubroker"
AUDIENCE = "gpubroker-api"
ALGORITHM = "RS256"
TokenType = Literal["access", "refresh", "service"]


class AuthError(Exception):
    """The credentials presented are not valid; the message says why, without echoing them."""


@dataclass(frozen=True)
class Claims:
    subject: str
    """``user:<id>`` for a user's tokens, ``service:<name>`` for a platform component's."""
    plan: str
    """The plan when the token was made; the guard uses the account's plan as it is now."""
    type: TokenType
    jti: str
    expires_at: int
    key_id: int | None = None
    """The API key a service token was made from: revoking the key ends the token."""


class Tokens:
    def __init__(self, keys: KeyRing, ttl_s: dict[TokenType, int]) -> None:
        self._keys = keys
        self._ttl_s = ttl_s

    def issue(
        self,
        subject: str,
        plan: str,
        token_type: TokenType,
        *,
        now: float | None = None,
        key_id: int | None = None,
        ttl_s: int | None = None,
    ) -> tuple[str, Claims]:
        issued = int(now if now is not None else time.time())
        expires = issued + (ttl_s if ttl_s is not None else self._ttl_s[token_type])
        claims = Claims(subject, plan, token_type, secrets.token_hex(16), expires, key_id)
        kid, key = self._keys.signing
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "plan": plan,
            "typ": token_type,
            "jti": claims.jti,
            "iat": issued,
            "exp": claims.expires_at,
        }
        if key_id is not None:
            payload["key"] = key_id
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid}), claims

    def verify(self, token: str, expected: TokenType | tuple[TokenType, ...]) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError(f"tokens must be signed with {ALGORITHM}")
        key = self._keys.verifying(str(header.get("kid", "")))
        if key is None:
            raise AuthError("the token was signed with an unknown or retired key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "typ", "plan"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the token is not valid ({type(exc).__name__})") from None
        kinds = (expected,) if isinstance(expected, str) else expected
        if payload["typ"] not in kinds:
            raise AuthError(f"a {payload['typ']} token cannot be used here")
        key = payload.get("key")
        if key is not None and (not isinstance(key, int) or isinstance(key, bool)):
            raise AuthError("the token's key claim is not valid")
        return Claims(
            str(payload["sub"]), str(payload["plan"]), payload["typ"], str(payload["jti"]), int(payload["exp"]), key
        )
