"""The provider contract: a plugin describes its API calls and normalises what comes back.

A plugin never performs I/O. It says which HTTP calls one poll consists of (``calls``), how to
read a response into raw records and follow-up calls such as the next page (``parse``), and how
to turn one raw record into an ``Offer`` (``normalise``). The worker runtime executes the calls
under the provider's concurrency limit, rate limit, timeouts and retries, and the same
description serves the live API, the replay server in tests and the bundled offline snapshot.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib.resources.abc import Traversable
from typing import Any, ClassVar

import orjson

from gpubroker.core.errors import ProviderBadResponse
from gpubroker.core.gpus import GpuMatch, UnknownGpuNames, resolve
from gpubroker.core.offer import Availability, Interconnect, Offer, Source, offer_id
from gpubroker.core.provider import Credentials, ProviderInfo
from gpubroker.core.renting import Instance, Refusal, RentalAction, RentalRequest, RentingUnsupported

log = logging.getLogger(__name__)

UNKNOWN_GPUS = UnknownGpuNames()
"""GPU names this process met that the catalogue does not know: each is logged once, and
offers with them keep ``gpu_type`` null (the gateway's /health lists them)."""


@dataclass(frozen=True)
class Call:
    """One HTTP request, relative to the provider's base URL."""

    path: str
    method: str = "GET"
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tag: str = ""
    """The target this call belongs to (a region, an endpoint): the runtime balances load and
    weights per tag, so keep tags to a small fixed set."""
    carry: Mapping[str, Any] = field(default_factory=dict)
    """Data for the plugin's own ``parse``, never sent: what earlier answers of the same poll
    said (e.g. a price list a later call's records are joined with)."""


@dataclass(frozen=True)
class Response:
    """A provider's answer to one ``Call``."""

    call: Call
    status: int
    headers: Mapping[str, str]
    body: bytes
    provider: str = ""

    def json(self) -> Any:
        """The body as JSON; an unparseable body is a ``ProviderBadResponse``."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ProviderBadResponse(
                self.provider, f"{self.call.method} {self.call.path} returned malformed JSON ({exc})"
            ) from None


@dataclass
class Page:
    """What one response held: raw offer records and the calls to make next (pagination)."""

    records: list[Mapping[str, Any]] = field(default_factory=list)
    follow: list[Call] = field(default_factory=list)


@dataclass(frozen=True)
class PollContext:
    """What a plugin may know during one poll, and the builder for its offers."""

    info: ProviderInfo
    observed_at: datetime
    source: Source = "live"
    credentials: Credentials = field(default_factory=Credentials)

    def offer(
        self,
        *,
        provider_offer_id: str | int,
        name: str,
        gpu_name: str,
        gpu_count: int,
        price_per_hour: Decimal | None,
        availability_status: Availability,
        region: str,
        gpu_memory_gb: float | None = None,
        **fields: Any,
    ) -> Offer:
        """Build a valid ``Offer``: id, provider, timestamps and GPU identity are filled here.

        ``gpu_memory_gb`` is what the provider reports for one GPU; when it does not say, the
        memory implied by the GPU name (or the family's only size) is used. ``interconnect`` is
        what the provider's API says beyond the GPU name (``("infiniband",)``); what the name
        states (SXM, PCIe, NVLink) is added here. ``price_per_hour``
        is ``None`` only when the provider publishes no hourly price at all: never estimate one.
        """
        match = resolve(gpu_name)
        if UNKNOWN_GPUS.record(match):
            log.warning(
                "%s: GPU name %r is not in the catalogue; its offers carry gpu_type null "
                "(add it as an alias in gpubroker/core/gpus/catalog.toml)", self.info.name, gpu_name,
            )  # fmt: skip
        memory = gpu_memory_gb if gpu_memory_gb is not None else match.memory_gb
        fields["interconnect"] = (*fields.get("interconnect", ()), *_stated_interconnect(match, gpu_count))
        return Offer(
            id=offer_id(self.info.name, str(provider_offer_id)),
            provider=self.info.name,
            provider_offer_id=str(provider_offer_id),
            name=name,
            gpu_name=gpu_name,
            gpu_type=match.gpu_type,
            gpu_vendor=match.vendor,
            gpu_count=gpu_count,
            gpu_memory_gb=memory,
            price_per_hour=price_per_hour,
            availability_status=availability_status,
            region=region,
            last_updated=self.observed_at,
            source=self.source,
            **fields,
        )


def _stated_interconnect(match: GpuMatch, gpu_count: int) -> tuple[Interconnect, ...]:
    """What a GPU name says about the interconnect. SXM GPUs sit on an NVLink baseboard and an
    NVL card is sold NVLink-bridged, so several of either are linked; a single GPU links nothing."""
    stated: list[Interconnect] = []
    if match.form_factor == "SXM":
        stated.append("sxm")
    elif match.form_factor in ("PCIE", "NVL"):
        stated.append("pcie")
    if gpu_count > 1 and (match.nvlink or match.form_factor in ("SXM", "NVL")):
        stated.append("nvlink")
    return tuple(stated)


class ProviderAdapter(ABC):
    """Subclass this once per provider and register the class from your plugin's hook.

    Class attributes:
        info: the provider's metadata (``ProviderInfo``).
        recordings: the package folder holding ``manifest.json`` and recorded payloads. Its
            ``default`` scenario is the bundled snapshot served, clearly labelled, when the
            provider cannot be reached in embedded mode, and what the replay server serves.
        schemas: the package folder holding a JSON Schema of each kind of answer the plugin
            reads, built from the provider's public reference and naming it
            (``gpubroker.core.answer_schemas``). The recordings must validate against them, and
            ``gpubroker plugins probe`` compares the live API's answers with them.
            (Added in plugin API 1; optional for loading, required by the conformance kit.)
    """

    info: ClassVar[ProviderInfo]
    recordings: ClassVar[Traversable | None] = None
    schemas: ClassVar[Traversable | None] = None
    renting: ClassVar[frozenset[RentalAction]] = frozenset()
    """The rental actions this provider's API allows (plugin API 2). Empty: offers only. A plugin
    that rents lists at least ``core.renting.REQUIRED_ACTIONS`` and implements their methods."""
    billing_granularity_s: ClassVar[int] = 3600
    """The unit the provider bills a running instance in, from its pricing documentation: a
    started unit is billed whole (1 for per-second billing, 60 for per-minute)."""

    @abstractmethod
    def calls(self, ctx: PollContext) -> Iterable[Call]:
        """The calls that start one poll (one per region, endpoint or first page)."""

    @abstractmethod
    def parse(self, response: Response, ctx: PollContext) -> Page:
        """Read a successful response into raw records and follow-up calls."""

    @abstractmethod
    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        """Turn one raw record into an ``Offer``, or ``None`` when it is not a GPU offer.

        Raise ``ValueError``/``KeyError`` for a record that is malformed: the runtime counts
        and reports it without failing the rest of the poll.
        """

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        """Add credentials to a call. The default adds nothing (public APIs)."""
        return call

    def health_call(self, ctx: PollContext) -> Call:
        """A cheap call that shows whether the API is up; the first poll call by default."""
        return next(iter(self.calls(ctx)))

    # Plugin API 2: renting. Each pair describes one call and reads its answer; none does I/O.
    # ``read_refusal`` sees every answer first, so the ``read_*`` methods see successes only.

    def provision_call(self, request: RentalRequest) -> Call:
        """The call that creates one instance of ``request.provider_offer_id``, carrying ``request.tag``."""
        raise self._unsupported(RentalAction.PROVISION)

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        """The instance a successful provision answer describes."""
        raise self._unsupported(RentalAction.PROVISION)

    def status_call(self, instance_id: str) -> Call:
        """The call that reads one instance."""
        raise self._unsupported(RentalAction.STATUS)

    def read_status(self, response: Response, instance_id: str) -> Instance:
        """The instance a status answer describes; raise ``InstanceNotFound`` when it says the
        instance does not exist."""
        raise self._unsupported(RentalAction.STATUS)

    def instances_call(self) -> Call:
        """The call that lists the account's instances."""
        raise self._unsupported(RentalAction.INSTANCES)

    def read_instances(self, response: Response) -> list[Instance]:
        """Every instance the answer lists, with its tag (the name or label it carries)."""
        raise self._unsupported(RentalAction.INSTANCES)

    def scale_call(self, instance: Instance, gpu_count: int, request: RentalRequest) -> Call:
        """The call that changes a running instance to ``gpu_count`` GPUs."""
        raise self._unsupported(RentalAction.SCALE)

    def terminate_call(self, instance_id: str) -> Call:
        """The call that ends an instance for good (and its billing)."""
        raise self._unsupported(RentalAction.TERMINATE)

    def read_refusal(self, response: Response) -> Refusal | None:
        """The provider's refusal in an answer to a rental call (out of capacity, insufficient
        balance, ...), or None when the answer is not one. An error status this does not
        recognise still fails, as a typed HTTP error."""
        return None

    def _unsupported(self, action: RentalAction) -> RentingUnsupported:
        return RentingUnsupported(self.info.name, f"the {self.info.display_name} plugin does not support {action}")
