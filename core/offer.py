"""The normalised GPU offer: the one shape every provider's data is turned into.

Prices are exact decimals in US dollars per hour for the whole instance. ``id`` is derived from
the provider and its own offer id, so the same offer keeps the same id across polls, workers and
gateway instances, which is what makes merging and de-duplication exact.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from gpubroker.core.prices import MAX_PRICE, price_number, quantize

OFFER_SCHEMA_VERSION = 1

# Fixed namespace so offer ids are the same everywhere; never change it.
_OFFER_NAMESPACE = uuid.UUID("6f1c2b9e-4d0a-5c37-9e61-2a8f0b7d3c11")


class Availability(StrEnum):
    """How readily an offer can be rented now, mapped from each provider's own signal."""

    AVAILABLE = "available"
    LIMITED = "limited"
    UNAVAILABLE = "unavailable"


Source = Literal["live", "snapshot"]
Interconnect = Literal["nvlink", "sxm", "pcie", "infiniband"]
INTERCONNECTS: tuple[Interconnect, ...] = ("nvlink", "sxm", "pcie", "infiniband")


@lru_cache(maxsize=1 << 18)
def offer_id(provider: str, provider_offer_id: str) -> str:
    """The deterministic id of a provider's offer (a UUID string); cached, as every poll asks
    again for the same offers."""
    return str(uuid.uuid5(_OFFER_NAMESPACE, f"{provider}/{provider_offer_id}"))


class Offer(BaseModel):
    """One rentable GPU configuration at one provider, as of ``last_updated``.

    ``source`` says whether the data came from the provider's live API or from the plugin's
    bundled snapshot; a snapshot offer's ``last_updated`` is the snapshot's capture time.
    ``quarantined`` is set by the worker's price sanity guard (``gpubroker.core.sanity``), never by
    a plugin.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    provider: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    provider_offer_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    gpu_name: str = Field(min_length=1, description="The GPU name exactly as the provider wrote it.")
    gpu_type: str | None = Field(description="Canonical GPU family, or null when unknown.")
    gpu_vendor: str | None
    gpu_count: int = Field(ge=1)
    gpu_memory_gb: float | None = Field(ge=0, description="Memory of one GPU.")
    vcpus: float | None = Field(default=None, ge=0)
    ram_gb: float | None = Field(default=None, ge=0)
    storage_gb: float | None = Field(default=None, ge=0)
    cpu_arch: str | None = None
    price_per_hour: Decimal | None = Field(
        gt=0,
        le=MAX_PRICE,
        description="USD per hour for the whole instance; null when the provider publishes no hourly price.",
    )
    spot_price: Decimal | None = Field(default=None, gt=0, le=MAX_PRICE)
    spot: bool = False
    currency: Literal["USD"] = "USD"
    availability_status: Availability
    region: str = Field(min_length=1)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    compliance_tags: tuple[str, ...] = ()
    interconnect: tuple[Interconnect, ...] = Field(
        default=(),
        description=(
            "How the GPUs connect, where the provider says: sxm or pcie (the GPUs' form factor), nvlink "
            "(GPUs linked by NVLink), infiniband (InfiniBand between instances). Empty when unknown."
        ),
    )
    resold_from: str | None = Field(
        default=None, description="The cloud whose capacity a marketplace or broker resells, when it says."
    )
    last_updated: datetime
    source: Source = "live"
    quarantined: str | None = Field(
        default=None,
        description=(
            "Why the price sanity guard holds this offer out of ranking (a price or memory that cannot be "
            "real for its GPU, or a price that moved more than 10x between polls); null when trusted."
        ),
    )

    @field_validator("price_per_hour", "spot_price")
    @classmethod
    def _quantise(cls, value: Decimal | None) -> Decimal | None:
        return None if value is None else quantize(value)

    @field_validator("interconnect")
    @classmethod
    def _canonical_order(cls, value: tuple[Interconnect, ...]) -> tuple[Interconnect, ...]:
        return tuple(kind for kind in INTERCONNECTS if kind in value)

    @field_validator("last_updated")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("last_updated must carry a timezone")
        return value

    @field_serializer("price_per_hour", "spot_price")
    def _price_as_number(self, value: Decimal | None) -> float | None:
        # For Python callers of to_json; to_bytes writes the exact digits (core.prices).
        return None if value is None else float(value)

    @property
    def price_per_gpu_hour(self) -> Decimal | None:
        if self.price_per_hour is None:
            return None
        return quantize(self.price_per_hour / self.gpu_count)

    def to_json(self) -> dict[str, Any]:
        """The offer as JSON values; prices as floats (equal in value to the exact ones)."""
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        """The offer as JSON text, prices written as plain decimal numbers (``20``, ``0.000001``):
        what REST answers, offer envelopes and webhook payloads carry."""
        data: dict[str, Any] = self.to_json()
        for name in ("price_per_hour", "spot_price"):
            value = getattr(self, name)
            if value is not None:
                data[name] = price_number(value)
        return orjson.dumps(data)
