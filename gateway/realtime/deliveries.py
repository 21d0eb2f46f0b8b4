"""Webhook deliveries: the exact signed request for each webhook an event concerns.

The gateway does not make the HTTP call itself: a delivery goes to ``gpubroker.webhooks`` and a
delivery service (with its own retries and timeouts, away from the request path) POSTs it. The
body is signed here, where the secret is at hand (``signature``).

A delivery's id is derived from the bus record behind it and the webhook, so handling that
record again (the bus delivers at least once) makes a delivery with the same id, which the
service and the receiver can recognise.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gpubroker.core.events import WebhookDelivery
from gpubroker.core.vault import KeyValueVault

SECRET_TTL_S = 300.0
USER_AGENT = "GPUBROKER-Webhooks/1"


def secret_path(webhook_id: int) -> str:
    """Where a webhook's signing secret is kept in the vault."""
    return f"gpubroker/webhooks/{webhook_id}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``: the timestamp is signed
    too, so a receiver that refuses old ones cannot be sent a recorded delivery again."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class Hook:
    id: int
    user_id: int
    url: str
    events: frozenset[str]


class Deliveries:
    def __init__(self, vault: KeyValueVault) -> None:
        self._vault = vault
        self._secrets: dict[int, tuple[float, str]] = {}

    async def make(
        self, hook: Hook, event: str, data: dict[str, Any], source: str, now: datetime
    ) -> WebhookDelivery | None:
        """The delivery of ``data`` as ``event`` to ``hook``, or None when its secret is gone (the
        webhook was just removed). A vault that cannot be reached raises: try again later."""
        secret = await self._secret(hook)
        if secret is None:
            return None
        delivery_id = "dlv_" + hashlib.sha256(f"{source}:{hook.id}".encode()).hexdigest()[:24]
        body = orjson.dumps({"id": delivery_id, "type": event, "created_at": now.isoformat(), "data": data})
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GPUBROKER-Event": event,
            "X-GPUBROKER-Delivery": delivery_id,
            "X-GPUBROKER-Signature": signature(secret, int(now.timestamp()), body),
        }
        return WebhookDelivery(delivery_id, hook.id, hook.user_id, hook.url, event, body, headers, now)

    def forget(self, keep: set[int]) -> None:
        """Drop the cached secrets of webhooks no longer registered."""
        for webhook_id in self._secrets.keys() - keep:
            del self._secrets[webhook_id]

    async def _secret(self, hook: Hook) -> str | None:
        cached = self._secrets.get(hook.id)
        if cached is not None and time.monotonic() - cached[0] < SECRET_TTL_S:
            return cached[1]
        values = await self._vault.read(secret_path(hook.id))
        secret = None if values is None else values.get("secret")
        if secret is not None:  # none yet may be a webhook still being made: ask again next time
            self._secrets[hook.id] = (time.monotonic(), secret)
        return secret
