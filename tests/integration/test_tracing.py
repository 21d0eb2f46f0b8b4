"""One trace from a worker's poll, through Kafka, to the gateway's push to a WebSocket
subscriber, exported over OTLP (set by the standard OTEL_* variables) to a receiver in the test."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gpubroker.core.plugins import load_providers
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.integration.processes import (
    free_port,
    gateway_process,
    production_env,
    run_worker,
    seed_credentials,
    wait_for,
)
from tests.integration.test_wire_prices import FIRST, recordings_priced

pytestmark = pytest.mark.integration


class Receiver:
    """An OTLP/HTTP trace receiver: what every process exported, span by span."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[tuple[str, str, str]] = []  # (trace id, service, span name)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def __enter__(self) -> Receiver:
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((span.trace_id.hex(), service, span.name))
        return web.Response(body=b"", content_type="application/x-protobuf")

    def traces(self) -> dict[str, set[tuple[str, str]]]:
        grouped: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for trace_id, service, name in list(self.spans):
            grouped[trace_id].add((service, name))
        return grouped


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


async def first_event(url: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url.replace("http", "ws") + "/ws/providers/") as ws,
    ):
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "connection_established"
        await ws.send_json({"type": "subscribe", "channels": ["provider:lambdalabs"]})
        while True:
            message = json.loads((await ws.receive(timeout=60)).data)
            if message["type"] == "event":
                return message  # type: ignore[no-any-return]


def test_a_poll_and_the_push_it_causes_are_one_trace(services: Services, tmp_path: Path, receiver: Receiver) -> None:
    otlp = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    env = {**production_env(services, tmp_path / "data"), **otlp}
    provider = load_providers(allow=["lambdalabs"]).get("lambdalabs")
    seed_credentials(services, provider)
    prices = {name: cents + random.randint(1, 99) for name, cents in FIRST.items()}  # new, plausible prices
    recordings = recordings_priced(Path(str(provider.adapter.recordings)), tmp_path / "recordings", prices)
    with gateway_process(env) as url, ReplayServer(recordings) as replay:

        async def subscribe_then_poll() -> dict[str, object]:
            listening = asyncio.create_task(first_event(url))
            await asyncio.sleep(2)  # subscribed before the poll
            result = await asyncio.to_thread(run_worker, env, "lambdalabs", replay)
            assert result.returncode == 0, result.stderr
            return await listening

        event = asyncio.run(subscribe_then_poll())
        assert event["event"] in ("price_update", "offer_added", "availability")

        def joined() -> set[tuple[str, str]] | None:
            for spans in receiver.traces().values():
                names = {name for _, name in spans}
                if "poll lambdalabs" in names and any(n.startswith("push ") for n in names):
                    return spans
            return None

        spans = wait_for(joined, timeout=20)
    services_in_trace = {service for service, _ in spans}
    assert {"gpubroker-worker-lambdalabs", "gpubroker-gateway"} <= services_in_trace
    assert any(name == "ingest gpubroker.offers" for _, name in spans)
