from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from gpubroker.core import events
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.core.settings import Settings
from gpubroker.gateway.app import GatewayApplication
from gpubroker.gateway.runtime import GatewayRuntime

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def offer(
    provider: str, sku: str, gpu: str, price: str | None, *, count: int = 1, gpu_type: str | None = None
) -> Offer:
    return Offer(
        id=offer_id(provider, sku),
        provider=provider,
        provider_offer_id=sku,
        name=f"{count}x {gpu}",
        gpu_name=gpu,
        gpu_type=gpu_type if gpu_type is not None else gpu,
        gpu_vendor="nvidia",
        gpu_count=count,
        gpu_memory_gb=80,
        price_per_hour=None if price is None else Decimal(price),
        availability_status=Availability.AVAILABLE,
        region="us-east",
        last_updated=NOW,
    )


PUBLIC_NAMES = {"hooks.example.com": ["93.184.215.14"], "rebound.example.com": ["127.0.0.1"]}
"""What the tests' resolver answers (the machines that run them may have no DNS at all)."""
OPERATOR_KEY = "operator-test-key"
"""The operator's key (Admin plan, no rate limit) that ``client`` calls with by default."""


@pytest.fixture
async def runtime(clean_env: pytest.MonkeyPatch) -> AsyncIterator[GatewayRuntime]:
    settings = Settings(secret_key="test-key", index_refresh_s=0, admin_api_key=OPERATOR_KEY, enforce_plans=True)
    runtime = GatewayRuntime(settings, bus=MemoryBus())
    runtime.resolver = resolve_test_names
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
def publish(runtime: GatewayRuntime):  # type: ignore[no-untyped-def]
    async def publish(offers: Iterable[Offer], *, provider_events: Iterable[events.ProviderEvent] = ()) -> None:
        for item in offers:
            await runtime.bus.publish(events.OFFERS, item.id, events.encode_offer(item))
        for event in provider_events:
            await runtime.bus.publish(events.PROVIDER_EVENTS, event.provider, event.encode())
        await runtime.bus.flush()
        for _ in range(100):  # let the ingest task consume what was published
            await asyncio.sleep(0)

    return publish


@pytest.fixture
def client(runtime: GatewayRuntime) -> GatewayClient:
    """The whole application (guard, fast path, Django) as the operator, unless a test passes
    its own credentials in ``headers``."""
    return GatewayClient(asgi_client(runtime))


def succeeded(provider: str, *, source: str = "live", offers: int = 0) -> events.ProviderEvent:
    return events.ProviderEvent(
        provider, "poll.succeeded", NOW, {"source": source, "data_as_of": NOW.isoformat(), "offers": offers}
    )


class AsgiClient:
    """Drives the whole ASGI application (guard, fast path, Django) as a server would."""

    def __init__(self, app: GatewayApplication, client: str = "127.0.0.1") -> None:
        self.app = app
        self.client = client

    async def get(self, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
        return await self.request("GET", path, query=query, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        json: Any = None,
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        content = None if json is None else orjson.dumps(json)
        return await self.raw(method, path, query=query, headers=headers, body=content)

    async def raw(
        self,
        method: str,
        path: str,
        *,
        query: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict[str, Any]] = []
        all_headers = [*(headers or []), *([(b"content-type", b"application/json")] if body is not None else [])]
        body = body or b""
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
            "headers": all_headers, "client": (self.client, 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        requests = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if requests:
                return requests.pop()
            await asyncio.Event().wait()  # the client stays connected until the answer is sent
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        content = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], {name.lower(): value for name, value in start["headers"]}, content


def asgi_client(runtime: GatewayRuntime, client: str = "127.0.0.1") -> AsgiClient:
    app = GatewayApplication()
    app.runtime = runtime
    return AsgiClient(app, client)


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


class GatewayClient:
    """A face like Django's test client on ``AsgiClient``, so every request passes the guard."""

    def __init__(self, asgi: AsgiClient, headers: dict[str, str] | None = None) -> None:
        self.asgi = asgi
        self.headers = {"x-api-key": OPERATOR_KEY} if headers is None else headers

    async def get(
        self, path: str, data: dict[str, str] | None = None, *, headers: dict[str, str] | None = None
    ) -> Answer:
        return await self.request("GET", path, query=data, headers=headers)

    async def post(
        self,
        path: str,
        data: Any = None,
        content_type: str = "application/json",
        *,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        return await self.request("POST", path, body=data, headers=headers)

    async def delete(self, path: str, *, headers: dict[str, str] | None = None) -> Answer:
        return await self.request("DELETE", path, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        raw = [(name.lower().encode(), value.encode()) for name, value in {**self.headers, **(headers or {})}.items()]
        content = body if isinstance(body, bytes) else None if body is None else orjson.dumps(body)
        encoded = urlencode(query or {}, doseq=True).encode()
        status, got, answer = await self.asgi.raw(method, path, query=encoded, headers=raw, body=content)
        return Answer(status, {k.decode().lower(): v.decode("latin-1") for k, v in got.items()}, answer)


async def resolve_test_names(host: str, port: int) -> list[str]:
    if host not in PUBLIC_NAMES:
        raise OSError(f"{host} is not a name the tests resolve")
    return PUBLIC_NAMES[host]
