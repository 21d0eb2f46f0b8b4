"""API keys for machine-to-machine use: made, shown once, stored as digests, revocable.

A key is ``gpb_`` and 43 random URL-safe characters. Who owns a key is looked up (and briefly
remembered) by ``accounts.Accounts``.
"""

from __future__ import annotations

import hashlib
import secrets

from gpubroker.gateway.identity.plans import Plan

PREFIX = "gpb_"
MAX_KEYS: dict[Plan, int] = {Plan.FREE: 5, Plan.PRO: 20, Plan.ENTERPRISE: 100, Plan.ADMIN: 1000}
"""Active keys an account may hold: each key is a way in, and more keys are no more requests
(limits count the whole account)."""


def new_key() -> tuple[str, str, str]:
    """A fresh key, its display prefix and its digest (only the last two are stored)."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(PREFIX) + 6], digest(key)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
