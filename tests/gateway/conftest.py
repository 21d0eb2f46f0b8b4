import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.test import AsyncClient

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


@pytest.fixture
async def runtime(clean_env: pytest.MonkeyPatch) -> AsyncIterator[GatewayRuntime]:
    runtime = GatewayRuntime(Settings(secret_key="test-key", index_refresh_s=0), bus=MemoryBus())
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
def client() -> AsyncClient:
    return AsyncClient()


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
        body = b"" if json is None else orjson.dumps(json)
        sent: list[dict[str, Any]] = []
        all_headers = [*(headers or []), *([(b"content-type", b"application/json")] if json is not None else [])]
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
