"""The conformance suite every provider plugin runs.

Subclass it in your plugin's tests and name your adapter::

    from gpubroker.core.testkit.conformance import ProviderConformance
    from gpubroker_acme.adapter import AcmeAdapter

    class TestAcmeConformance(ProviderConformance):
        adapter = AcmeAdapter

It checks, against your recordings served by the replay server: the metadata is valid and the
plugin is installed under the entry-point group; the recordings are well formed; the ``default``
scenario normalises into valid offers with USD prices and known GPUs; ids are stable across
polls; every fault (5xx, 401, 429, a hang, a malformed body) becomes its typed error; and
credentials never appear in logs, errors or offers. The recordings must also hold an ``empty``
scenario (no offers) and a ``rate_limited`` one (the provider's own 429 answer).

It also holds the recordings to the provider's public reference: every answer schema in the
adapter's ``schemas`` folder names its source and is strict (an object says what else it
admits); every successful recorded answer validates against the schema for its call; a field
the reference does not define, put into any object of a recorded answer, is reported; and the
drift probe (``gpubroker plugins probe``) finds no drift in the recordings and reports a
drifted answer served in their place.

A plugin that rents (``renting`` not empty, plugin API 2) also sets ``rental_request`` (a
request whose calls its recordings answer), ``rental_instance_id`` (an instance they describe)
and ``emulator`` (its ``Dialect``), and records a ``renting`` scenario (each rental call's
answer, with an instance carrying ``rental_request.tag``) plus ``out_of_capacity`` and
``insufficient_balance`` (the provider's refusals of the provision, after an empty list). The kit
checks every rental call against those recordings, then runs the lifecycle and each injected
failure against the emulator, whose answers must validate against the answer schemas too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from gpubroker.core.adapter import Call, ProviderAdapter, Response
from gpubroker.core.answer_schemas import AnswerSchemas
from gpubroker.core.drift import probe
from gpubroker.core.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderHTTPError,
    ProviderRateLimited,
    ProviderTimeout,
)
from gpubroker.core.plugins import ENTRY_POINT_GROUP, load_providers
from gpubroker.core.provider import ProviderInfo
from gpubroker.core.recordings import Recordings
from gpubroker.core.renting import (
    REQUIRED_ACTIONS,
    InstanceNotFound,
    InstanceState,
    RefusalKind,
    RentalAction,
    RentalRefused,
    RentalRequest,
)
from gpubroker.core.testkit.answers import (
    UNDEFINED_FIELD,
    drifted_recordings,
    object_locations,
    successful_answers,
    with_undefined_field,
)
from gpubroker.core.testkit.emulator import Cloud, Dialect, Emulator
from gpubroker.core.testkit.polling import poll_replay
from gpubroker.core.testkit.renting import rental_executor
from gpubroker.core.testkit.replay import Faults, ReplayServer

FAULTS: dict[str, tuple[Faults, type[ProviderError]]] = {
    "server error": (Faults(status=503), ProviderHTTPError),
    "unauthorised": (Faults(status=401), ProviderAuthError),
    "rate limited": (Faults(status=429, headers={"Retry-After": "0"}), ProviderRateLimited),
    "hang": (Faults(hang=True), ProviderTimeout),
    "malformed body": (Faults(malformed=True), ProviderBadResponse),
}


class ProviderConformance:
    adapter: ClassVar[type[ProviderAdapter]]
    publishes_prices: ClassVar[bool] = True
    """Set False for a provider that publishes no hourly price (its README must say so)."""
    rental_request: ClassVar[RentalRequest | None] = None
    rental_instance_id: ClassVar[str] = ""
    emulator: ClassVar[type[Dialect] | None] = None

    @pytest.fixture
    def server(self) -> Iterator[ReplayServer]:
        assert self.adapter.recordings is not None, f"{self.adapter.__name__}.recordings is not set"
        with ReplayServer(self.adapter.recordings) as server:
            yield server

    @pytest.fixture
    def credentials(self) -> dict[str, str]:
        """A made-up value for every credential the provider declares, optional ones included."""
        return {spec.name: f"conformance-{spec.name}-{secrets.token_hex(8)}" for spec in self.adapter.info.credentials}

    def test_metadata_is_valid(self) -> None:
        assert isinstance(self.adapter.info, ProviderInfo)
        ProviderInfo.model_validate(self.adapter.info.model_dump())

    def test_installed_under_the_entry_point_group(self) -> None:
        package = self.adapter.__module__.split(".")[0]
        names = [
            ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.value.split(".")[0].split(":")[0] == package
        ]
        assert names, f"no entry point in {ENTRY_POINT_GROUP!r} names {package!r}; is the plugin installed?"
        registered = load_providers(allow=names).get(self.adapter.info.name)  # this plugin alone
        assert registered.adapter is self.adapter
        assert registered.version != "unpackaged"

    def test_recordings_are_well_formed(self) -> None:
        assert self.adapter.recordings is not None
        recordings = Recordings(self.adapter.recordings)
        assert recordings.provider == self.adapter.info.name
        assert recordings.captured_at.tzinfo is not None
        assert "default" in recordings.scenarios()
        for scenario in recordings.scenarios():
            for exchange in recordings.exchanges(scenario):
                content_type = next(
                    (v for k, v in exchange.response.headers.items() if k.lower() == "content-type"), ""
                )
                if "json" in content_type and exchange.response.body:
                    orjson.loads(exchange.response.body)

    def _schemas(self) -> AnswerSchemas:
        assert self.adapter.schemas is not None, (
            f"{self.adapter.__name__}.schemas is not set: ship a JSON Schema of each answer the plugin reads, "
            "built from the provider's public reference (see gpubroker.core.answer_schemas)"
        )
        return AnswerSchemas(self.adapter.schemas)

    def test_answer_schemas_are_strict_and_name_their_reference(self) -> None:
        for schema in self._schemas().all:  # loading checks the annotation, the source URL and strictness
            assert schema.sources and schema.answers, schema.name

    def test_recorded_answers_validate_against_their_schemas(self) -> None:
        assert self.adapter.recordings is not None
        schemas = self._schemas()
        problems = []
        for scenario, exchange in successful_answers(Recordings(self.adapter.recordings)):
            schema = schemas.for_answer(exchange.method, exchange.path)
            if schema is None:
                problems.append(f"{scenario}: no answer schema describes {exchange.method} {exchange.path}")
                continue
            problems += [
                f"{scenario}: {exchange.method} {exchange.path}: {finding} (schema {schema.name})"
                for finding in schema.check_body(exchange.response.body)
            ]
        assert not problems, "recorded answers the reference does not describe:\n" + "\n".join(problems)

    def test_a_field_the_reference_does_not_define_fails(self) -> None:
        assert self.adapter.recordings is not None
        schemas = self._schemas()
        checked: set[tuple[str, str]] = set()
        for _, exchange in successful_answers(Recordings(self.adapter.recordings), scenario="default"):
            schema = schemas.for_answer(exchange.method, exchange.path)
            assert schema is not None
            document = schema.decode(exchange.response.body)
            for folded, location in object_locations(document):
                if (schema.name, folded) in checked:
                    continue
                checked.add((schema.name, folded))
                findings = schema.check(with_undefined_field(document, location))
                where = "".join(f"/{part}" for part in location) + f"/{UNDEFINED_FIELD}"
                assert any(finding.path.startswith(where) for finding in findings), (
                    f"{schema.name} accepts a field nobody defined at {folded or '/'}: "
                    "set additionalProperties to false (or to the schema of the map's values)"
                )
        assert checked, "the default scenario has no successful answer with an object to check"

    @pytest.mark.asyncio
    async def test_probe_finds_no_drift_in_the_recordings(
        self, server: ReplayServer, credentials: dict[str, str]
    ) -> None:
        report = await probe(self.adapter, base_url=server.url, credentials=credentials)
        assert report.answers and not report.drifted, "\n".join(report.lines())

    @pytest.mark.asyncio
    async def test_probe_reports_a_drifted_answer(self, tmp_path: Path, credentials: dict[str, str]) -> None:
        assert self.adapter.recordings is not None
        folder, answer = drifted_recordings(Recordings(self.adapter.recordings), self.adapter.recordings, tmp_path)
        with ReplayServer(folder) as server:
            report = await probe(self.adapter, base_url=server.url, credentials=credentials)
        kinds = {(d.against, d.kind) for d in report.differences if d.path.endswith(f"/{UNDEFINED_FIELD}")}
        assert report.drifted and kinds == {("schema", "new"), ("recording", "new")}, "\n".join(report.lines())
        assert all(d.answer == answer for d in report.differences if d.path.endswith(f"/{UNDEFINED_FIELD}"))

    @pytest.mark.asyncio
    async def test_default_scenario_normalises_into_valid_offers(
        self, server: ReplayServer, credentials: dict[str, str]
    ) -> None:
        offers = await poll_replay(self.adapter, server, credentials=credentials)
        assert offers, "the default scenario produced no offers"
        for offer in offers:
            assert offer.provider == self.adapter.info.name
            assert offer.currency == "USD"
            if self.publishes_prices:
                assert offer.price_per_hour is not None and offer.price_per_hour > 0, offer
                assert offer.price_per_hour < Decimal(2000), f"implausible hourly price: {offer}"
            else:
                assert offer.price_per_hour is None, "publishes_prices is False but a price was set"
        unknown = sorted({offer.gpu_name for offer in offers if offer.gpu_type is None})
        assert not unknown, f"GPU names the catalogue does not know: {unknown}"

    @pytest.mark.asyncio
    async def test_ids_are_stable_across_polls(self, server: ReplayServer, credentials: dict[str, str]) -> None:
        first = await poll_replay(self.adapter, server, credentials=credentials)
        second = await poll_replay(self.adapter, server, credentials=credentials)
        assert sorted(offer.id for offer in first) == sorted(offer.id for offer in second)
        assert len({offer.id for offer in first}) == len(first)

    @pytest.mark.asyncio
    async def test_empty_scenario_gives_no_offers(self, server: ReplayServer, credentials: dict[str, str]) -> None:
        assert "empty" in server.recordings.scenarios(), "record the provider's answer with no offers as 'empty'"
        server.scenario = "empty"
        assert await poll_replay(self.adapter, server, credentials=credentials) == []

    @pytest.mark.asyncio
    async def test_recorded_rate_limit_is_typed(self, server: ReplayServer, credentials: dict[str, str]) -> None:
        assert "rate_limited" in server.recordings.scenarios(), "record the provider's 429 answer as 'rate_limited'"
        server.scenario = "rate_limited"
        with pytest.raises(ProviderRateLimited):
            await poll_replay(self.adapter, server, credentials=credentials)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("fault", sorted(FAULTS))
    async def test_faults_become_typed_errors(
        self, server: ReplayServer, credentials: dict[str, str], fault: str
    ) -> None:
        server.faults, expected = FAULTS[fault]
        with pytest.raises(expected):
            await poll_replay(self.adapter, server, credentials=credentials, timeout_s=0.5)

    @pytest.mark.asyncio
    async def test_latency_within_the_timeout_is_fine(self, server: ReplayServer, credentials: dict[str, str]) -> None:
        server.faults = Faults(latency_s=0.05)
        assert await poll_replay(self.adapter, server, credentials=credentials)

    @pytest.mark.asyncio
    async def test_credentials_never_leak(
        self, server: ReplayServer, credentials: dict[str, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        offers = await poll_replay(self.adapter, server, credentials=credentials)
        texts = [offer.to_bytes().decode() for offer in offers]
        server.faults = Faults(status=400, echo=True)
        with pytest.raises(ProviderError) as error:
            await poll_replay(self.adapter, server, credentials=credentials)
        texts += [str(error.value), repr(error.value), caplog.text]
        for value in credentials.values():
            assert not any(value in text for text in texts), "a credential value leaked"

    # Renting (plugin API 2)

    def _rents(self) -> RentalRequest:
        if not self.adapter.renting:
            pytest.skip(f"{self.adapter.info.name} does not rent")
        assert self.rental_request is not None and self.rental_instance_id, (
            "a plugin that rents sets rental_request and rental_instance_id (answered by its 'renting' recordings)"
        )
        assert self.emulator is not None, "a plugin that rents ships a Dialect and names it as emulator"
        return self.rental_request

    def _emulated(self, *, boot_s: float = 0.05) -> ReplayServer:
        assert self.adapter.recordings is not None and self.emulator is not None
        emulator = Emulator(self.emulator(), Cloud(granularity_s=self.adapter.billing_granularity_s, boot_s=boot_s))
        return ReplayServer(self.adapter.recordings, emulator=emulator)

    def test_renting_supports_what_the_broker_needs(self) -> None:
        self._rents()
        missing = REQUIRED_ACTIONS - self.adapter.renting
        assert not missing, f"renting needs {sorted(missing)} as well"
        declared = any(
            "billing_granularity_s" in vars(cls) for cls in self.adapter.__mro__[:-1] if cls is not ProviderAdapter
        )
        assert declared, "declare billing_granularity_s from the provider's pricing documentation"

    def test_rental_calls_match_the_recordings(self) -> None:
        request = self._rents()
        assert self.adapter.recordings is not None
        recordings, adapter = Recordings(self.adapter.recordings), self.adapter()
        assert "renting" in recordings.scenarios(), "record each rental call's answer as the 'renting' scenario"

        def answer(call: Call) -> Response:
            exchange = recordings.find(call.method, call.path, call.params, call.json, "renting")
            assert exchange is not None, f"no 'renting' recording answers {call.method} {call.path}"
            recorded = exchange.response
            response = Response(call, recorded.status, recorded.headers, recorded.body, self.adapter.info.name)
            assert adapter.read_refusal(response) is None, f"{call.method} {call.path}: a success read as a refusal"
            return response

        provisioned = adapter.read_provisioned(answer(adapter.provision_call(request)), request)
        assert provisioned.instance_id and provisioned.tag == request.tag
        listed = adapter.read_instances(answer(adapter.instances_call()))
        assert any(i.tag == request.tag for i in listed), f"the recorded list has no instance tagged {request.tag!r}"
        status = adapter.read_status(answer(adapter.status_call(self.rental_instance_id)), self.rental_instance_id)
        assert status.instance_id == self.rental_instance_id
        answer(adapter.terminate_call(self.rental_instance_id))
        if RentalAction.SCALE in self.adapter.renting:
            answer(adapter.scale_call(status, request.gpu_count * 2, request))

    @pytest.mark.asyncio
    @pytest.mark.parametrize("kind", [RefusalKind.OUT_OF_CAPACITY, RefusalKind.INSUFFICIENT_BALANCE])
    async def test_recorded_refusals_are_typed(
        self, server: ReplayServer, credentials: dict[str, str], kind: RefusalKind
    ) -> None:
        request = self._rents()
        assert kind.value in server.recordings.scenarios(), f"record the provider's {kind} refusal as {kind.value!r}"
        server.scenario = kind.value
        async with rental_executor(self.adapter, server.url, credentials=credentials) as executor:
            with pytest.raises(RentalRefused) as refused:
                await executor.provision(request)
        assert refused.value.kind is kind and refused.value.reason

    @pytest.mark.asyncio
    async def test_emulated_lifecycle(self, credentials: dict[str, str]) -> None:
        request = self._rents()
        with self._emulated(boot_s=0.0) as server:
            async with rental_executor(self.adapter, server.url, credentials=credentials) as executor:
                created = await executor.provision(request)
                assert created.tag == request.tag
                again = await executor.provision(request)
                assert again.instance_id == created.instance_id, "a repeated provision rented a second instance"
                assert (await executor.status(created.instance_id)).state is InstanceState.RUNNING
                assert [i.rental_id for i in await executor.tagged()] == [created.rental_id]
                if RentalAction.SCALE in self.adapter.renting:
                    scaled = await executor.scale(created, request.gpu_count * 2, request)
                    assert scaled.gpu_count == request.gpu_count * 2
                await executor.terminate(created.instance_id)
                await executor.terminate(created.instance_id)  # twice is fine
                with pytest.raises(InstanceNotFound):
                    await executor.status(created.instance_id)
                assert await executor.tagged() == []
            assert server.emulator is not None
            cloud = server.emulator.cloud
            assert len(cloud.instances()) == 1
            answered = server.emulator.answered
        schemas = self._schemas()
        problems = []
        for sent, reply in answered:
            if not 200 <= reply.status < 300:
                continue
            schema = schemas.for_answer(sent.method, sent.path)
            if schema is None:
                problems.append(f"no answer schema describes {sent.method} {sent.path}")
                continue
            body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
            problems += [f"{sent.method} {sent.path}: {finding}" for finding in schema.check_body(body)]
        assert not problems, "emulated answers the reference does not describe:\n" + "\n".join(problems)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("fault", ["out_of_capacity", "insufficient_balance", "auth_failure"])
    async def test_emulated_failures_are_typed(self, credentials: dict[str, str], fault: str) -> None:
        request = self._rents()
        with self._emulated() as server:
            assert server.emulator is not None
            setattr(server.emulator.cloud.faults, fault, True)
            async with rental_executor(self.adapter, server.url, credentials=credentials) as executor:
                with pytest.raises(ProviderError) as failed:
                    await executor.provision(request)
            assert server.emulator.cloud.instances() == []
        if fault == "auth_failure":
            assert isinstance(failed.value, ProviderAuthError)
        else:
            assert isinstance(failed.value, RentalRefused) and failed.value.kind.value == fault

    @pytest.mark.asyncio
    async def test_a_create_whose_answer_is_lost_is_found_by_its_tag(self, credentials: dict[str, str]) -> None:
        request = self._rents()
        with self._emulated(boot_s=0.0) as server:
            assert server.emulator is not None
            server.emulator.cloud.faults.timeout_after_create = True
            async with rental_executor(self.adapter, server.url, credentials=credentials, timeout_s=0.3) as executor:
                found = await executor.provision(request)
            assert found.tag == request.tag
            assert [i.instance_id for i in server.emulator.cloud.instances()] == [found.instance_id]
