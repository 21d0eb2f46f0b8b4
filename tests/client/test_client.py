"""The ``gpubroker-client`` package against a running embedded gateway (``replayed_gateway``):
its models against the gateway's OpenAPI document, paging every offer exactly once, the live
stream resuming after a dropped connection, and 429s retried as ``Retry-After`` asks."""

from __future__ import annotations

import asyncio
import dataclasses
import types
import typing
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gpubroker_client import AsyncClient, Client, Offer, RateLimited, RetryPolicy, StreamEvent
from gpubroker_client.decoding import json_name
from gpubroker_client.endpoints import API, ENDPOINTS
from gpubroker_client.models import MODELS
from gpubroker_client.requests import NO_RETRIES
from tests.embedded import Embedded, change_price, copy_recordings, replayed_gateway

SCHEMA_TYPES = {"string": {str, datetime}, "integer": {int}, "number": {float, Decimal}, "boolean": {bool}}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_recordings("gpubroker_vastai", tmp_path_factory.mktemp("vastai") / "recordings")


@pytest.fixture(scope="module")
def gateway(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    with replayed_gateway(recordings, tmp_path_factory.mktemp("client") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def pro_key(gateway: Embedded) -> str:
    return gateway.user("pro@client.example.com", "pro")[1]


@pytest.fixture(scope="module")
def openapi(gateway: Embedded) -> dict[str, Any]:
    document = gateway.get_json("/api/v2/openapi.json")
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.SCHEMA)
def test_each_model_matches_its_component_schema(model: type, openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"][model.SCHEMA]  # type: ignore[attr-defined]
    properties, required = schema["properties"], set(schema.get("required", ()))
    fields = {json_name(item): item for item in dataclasses.fields(model)}
    assert set(fields) == set(properties), f"{model.__name__}: fields differ from the schema's properties"
    hints = typing.get_type_hints(model)
    for name, item in fields.items():
        defaulted = item.default is not dataclasses.MISSING or item.default_factory is not dataclasses.MISSING
        assert defaulted == (name not in required), f"{model.__name__}.{name}: required differs"
        assert _kinds(hints[item.name]) == _schema_kinds(properties[name], openapi), f"{model.__name__}.{name}"


def test_each_call_is_an_operation_answering_its_model(openapi: dict[str, Any]) -> None:
    for endpoint in ENDPOINTS:
        operation = openapi["paths"][API + endpoint.path][endpoint.method.lower()]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/{endpoint.answer.SCHEMA}"}, endpoint  # type: ignore[attr-defined]
        if endpoint.body:
            assert "requestBody" in operation, endpoint


def _kinds(hint: Any) -> tuple[frozenset[str], bool]:
    """A field's type as (JSON kinds, nullable)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        return _kinds(present[0])[0], type(None) in args
    origin = typing.get_origin(hint)
    if origin is list:
        return frozenset({"array"}), False
    if origin is dict:
        return frozenset({"object"}), False
    if dataclasses.is_dataclass(hint):
        return frozenset({f"ref:{hint.SCHEMA}"}), False  # type: ignore[attr-defined]
    return frozenset(kind for kind, types_ in SCHEMA_TYPES.items() if hint in types_), False


def _schema_kinds(schema: dict[str, Any], openapi: dict[str, Any]) -> tuple[frozenset[str], bool]:
    options = schema.get("anyOf", [schema])
    nullable = any(option.get("type") == "null" for option in options)
    kinds = set()
    for option in options:
        if "$ref" in option:
            name = option["$ref"].rsplit("/", 1)[-1]
            target = openapi["components"]["schemas"][name]
            kinds.add("string" if "enum" in target else f"ref:{name}")  # an enum is its values
        elif option.get("type") not in (None, "null"):
            kinds.add(option["type"])
    return frozenset(kinds), nullable


def test_paging_by_cursor_yields_every_offer_exactly_once(gateway: Embedded, pro_key: str) -> None:
    with Client(gateway.url, pro_key) as client:
        everything = client.offers(limit=500)
        paged = list(client.iter_offers(limit=7, sort="price_per_gpu"))
    ids = [offer.id for offer in paged]
    assert len(ids) == len(set(ids)) == everything.total > 7
    assert set(ids) == {offer.id for offer in everything.items}
    assert all(isinstance(offer, Offer) and offer.last_updated.tzinfo is not None for offer in paged)
    priced = [o for o in paged if o.price_per_hour is not None]
    assert priced and all(isinstance(o.price_per_hour, Decimal) for o in priced)


async def test_async_client_ranks_and_decides(gateway: Embedded, pro_key: str) -> None:
    async with AsyncClient(gateway.url, pro_key) as client:
        ranking = await client.ranking(gpu="H100", limit=3)
        decision = await client.decide(gpu=["H100"], alternatives=1)
        offers = [offer async for offer in client.iter_offers(gpu="H100", limit=5)]
    assert [item.rank for item in ranking.items] == [1, 2, 3]
    assert decision.choice is not None and decision.choice.offer.id == ranking.items[0].offer.id
    assert decision.choice.reasons and len(decision.alternatives) == 1
    assert {offer.gpu_type for offer in offers} == {"H100"}


async def test_the_stream_resumes_after_a_dropped_connection(gateway: Embedded, pro_key: str, recordings: Path) -> None:
    """Through a proxy that can cut every connection: the client reconnects with Last-Event-ID and
    gets the change made while it was away, once."""
    async with Proxy(gateway.url) as proxy, AsyncClient(proxy.url, pro_key) as client:
        stream = client.stream(gpu="H100")
        first = asyncio.ensure_future(_next_price_update(stream))
        await asyncio.sleep(0)  # let it connect before the change
        await proxy.connected.wait()
        change_price(recordings, "H100 SXM", 1, 0.9)
        before = await asyncio.wait_for(first, 15)
        proxy.cut()
        changed = change_price(recordings, "H100 PCIE", 1, 0.9)
        missed = await asyncio.wait_for(_next_price_update(stream), 20)
        await stream.aclose()  # type: ignore[attr-defined]
    assert proxy.connections >= 2
    assert missed.data["offer"]["provider_offer_id"].startswith(str(changed))  # type: ignore[index]
    assert missed.id != before.id


async def _next_price_update(stream: AsyncIterator[StreamEvent]) -> StreamEvent:
    async for event in stream:
        if event.event == "price_update":
            return event
    raise AssertionError("the stream ended")


class Proxy:
    """A TCP proxy on loopback in front of the gateway whose connections a test can cut."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0
        self.connected = asyncio.Event()

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        self._server.close()

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream_writer]
        self.connections += 1
        self.connected.set()
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


def test_429_is_retried_as_retry_after_asks(gateway: Embedded) -> None:
    """Anonymous callers may make 10 requests a second: past that, the retrying client waits as
    asked and every call succeeds; one that may not retry gets ``RateLimited`` with the wait."""
    with Client(gateway.url, "", retry=NO_RETRIES) as impatient, pytest.raises(RateLimited) as refused:
        for _ in range(30):
            impatient.gpus()
    assert refused.value.retry_after_s >= 1 and "rate limit of 10 requests per second" in refused.value.message
    with Client(gateway.url, "", retry=RetryPolicy(attempts=5, max_wait_s=5)) as patient:
        answers = [patient.gpus() for _ in range(25)]
    assert all(answer.count > 0 for answer in answers)
