"""What renting requests carry and answer, shared by the rentals API and agents' actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from django.utils import timezone
from ninja import Schema
from pydantic import ConfigDict, Field

from gpubroker.core.prices import Price
from gpubroker.gateway.catalog.store import Catalog
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.models import Rental
from gpubroker.gateway.rentals.budgets import user_over_budget
from gpubroker.gateway.rentals.service import Offered, Rentals

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ProvisionBody(Schema):
    model_config = ConfigDict(extra="forbid")

    offer_id: Annotated[str, Field(min_length=1, max_length=64, description="An offer's id from /providers.")]
    image: Annotated[str, Field(max_length=255, description="The image to boot; the provider's default if empty.")] = ""
    ssh_public_key: Annotated[str, Field(max_length=8192)] = ""
    options: Annotated[
        dict[str, Annotated[str, Field(max_length=255)]],
        Field(max_length=10, description="What the provider needs beyond these (see docs/rentals.md)."),
    ] = Field(default_factory=dict)


Money = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=6)]
"""A budget in USD: more than nothing, to the micro-dollar."""


class BudgetBody(Schema):
    model_config = ConfigDict(extra="forbid")

    budget_per_hour: Money | None = Field(
        None, description="USD per hour your live rentals may cost together; null: no limit."
    )
    budget_total: Money | None = Field(
        None, description="USD your rentals may cost in all, ended ones included; null: no limit."
    )


class BudgetOut(Schema):
    budget_per_hour: Price | None
    budget_total: Price | None
    spent_per_hour: Price = Field(description="What your live rentals cost per hour together, now.")
    spent_total: Price = Field(description="What your rentals have cost in all so far.")
    updated_at: datetime | None = Field(description="When the budget was last set; null if never.")


class ScaleBody(Schema):
    model_config = ConfigDict(extra="forbid")

    gpu_count: Annotated[int, Field(ge=1, le=64)]


class Failure(Schema):
    kind: str = Field(description="out_of_capacity, insufficient_balance, auth, invalid, not_found or not_created.")
    reason: str = Field(description="The provider's own words.")


class RentalOut(Schema):
    id: uuid.UUID
    state: str = Field(description="requested, provisioning, running, terminating, terminated or failed.")
    provider: str
    offer_id: str
    provider_offer_id: str
    gpu_type: str | None
    gpu_count: int
    region: str
    instance_id: str | None
    price_per_hour: Price = Field(description="The instance's price, fixed when it was rented (per GPU after a scale).")
    currency: str
    billing_granularity_s: int
    credentials: str = Field(
        description="Whose account at the provider it is rented on: platform (the broker's) or user (your own "
        "credentials, from your integration for the provider: Enterprise)."
    )
    cost: Price = Field(description="What it has cost so far (in full units of the provider's billing granularity).")
    final_cost: Price | None
    failure: Failure | None
    last_error: str | None = Field(description="The provider's last refusal of a scale or terminate.")
    agent_id: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


def rental_json(rental: Rental, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": rental.pk,
        "state": rental.state,
        "provider": rental.provider,
        "offer_id": rental.offer_id,
        "provider_offer_id": rental.provider_offer_id,
        "gpu_type": rental.gpu_type,
        "gpu_count": rental.gpu_count,
        "region": rental.region,
        "instance_id": rental.instance_id or None,
        "price_per_hour": rental.price_per_hour,
        "currency": rental.currency,
        "billing_granularity_s": rental.billing_granularity_s,
        "credentials": rental.credentials,
        "cost": rental.cost_at(now or timezone.now()),
        "final_cost": rental.final_cost,
        "failure": {"kind": rental.failure_kind, "reason": rental.failure_reason} if rental.failure_kind else None,
        "last_error": rental.last_error or None,
        "agent_id": rental.agent_id,
        "created_at": rental.created_at,
        "started_at": rental.started_at,
        "ended_at": rental.ended_at,
    }


async def provision_offer(
    rentals: Rentals,
    catalog: Catalog,
    body: ProvisionBody,
    *,
    user_id: int,
    key: str | None,
    agent_id: uuid.UUID | None,
) -> tuple[Rental, bool]:
    """Check the offer can be rented within the user's budget, then record and send the provision
    (or find the earlier one: a retry with a used key is never refused for the budget)."""
    offered = offered_by(rentals, catalog, body.offer_id)
    if key is None or not await Rental.objects.filter(user_id=user_id, idempotency_key=key).aexists():
        await within_budget(user_id, offered.price_per_hour, "the rental")
    rental, created = await rentals.provision(
        user_id=user_id,
        offered=offered,
        key=key,
        image=body.image,
        ssh_public_key=body.ssh_public_key,
        options=dict(body.options),
        agent_id=agent_id,
    )
    if not created and rental.offer_id != body.offer_id:
        raise ApiError(409, IDEMPOTENCY_HEADER, f"this key was used for rental {rental.pk} of offer {rental.offer_id}")
    return rental, created


async def within_budget(user_id: int, adding: Decimal, what: str) -> None:
    """A 402 naming why, when ``what`` (costing ``adding`` more per hour) would take the user past
    the rental budget they set; nothing is asked of any provider then."""
    over = await user_over_budget(user_id, timezone.now(), adding=adding)
    if over:
        raise ApiError(402, None, f"{what} would put you over your rental budget: {over}")


def offered_by(rentals: Rentals, catalog: Catalog, offer_id: str) -> Offered:
    """The offer as the catalogue has it now, if it can be rented through the broker."""
    offer = catalog.offers.get(offer_id)
    if offer is None:
        raise ApiError(404, "offer_id", f"no offer {offer_id} (it may have gone; list /providers again)")
    provider = rentals.providers.get(offer.provider)
    if provider is None:
        raise ApiError(409, "offer_id", f"{offer.provider} offers cannot be rented through the broker")
    if offer.price_per_hour is None:
        raise ApiError(409, "offer_id", f"{offer.provider} publishes no hourly price for this offer")
    return Offered(
        offer.id,
        offer.provider,
        offer.provider_offer_id,
        offer.gpu_type,
        offer.gpu_count,
        offer.region,
        offer.price_per_hour,
        offer.currency,
    )
