"""Crusoe Cloud's request signature (auth version 1.0), computed without I/O.

Every request carries ``X-Crusoe-Timestamp`` (RFC 3339, UTC, whole seconds) and
``Authorization: Bearer 1.0:<access key id>:<signature>``. The signature is the unpadded
base64url HMAC-SHA256, keyed with the base64url-decoded secret key, of::

    <path>\\n<canonical query>\\n<HTTP verb>\\n<timestamp>\\n

where the path includes the API version (``/v1alpha5/capacities``) and the canonical query is
the parameters sorted by name, ``key=value`` pairs query-escaped and joined with ``&``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote_plus

AUTH_VERSION = "1.0"
TIMESTAMP_HEADER = "X-Crusoe-Timestamp"


def timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{quote_plus(key)}={quote_plus(str(params[key]))}" for key in sorted(params))


def message(path: str, params: Mapping[str, str], verb: str, stamp: str) -> bytes:
    return f"{path}\n{canonical_query(params)}\n{verb.upper()}\n{stamp}\n".encode()


def signature(secret_key: str, payload: bytes) -> str:
    """Unpadded base64url HMAC-SHA256 of ``payload``.

    A secret that is not base64url is used as its UTF-8 bytes, so a mistyped key ends in Crusoe's
    401 (a clear credentials error) rather than a crash before the request is sent.
    """
    try:
        key = base64.urlsafe_b64decode(secret_key + "=" * (-len(secret_key) % 4))
    except (binascii.Error, ValueError):
        key = secret_key.encode()
    digest = hmac.new(key, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def headers(
    access_key: str, secret_key: str, path: str, params: Mapping[str, str], verb: str, stamp: str
) -> dict[str, str]:
    sig = signature(secret_key, message(path, params, verb, stamp))
    return {TIMESTAMP_HEADER: stamp, "Authorization": f"Bearer {AUTH_VERSION}:{access_key}:{sig}"}
