"""``/api/v2/rentals``: rent an offer, scale it, end it, see what it costs (Pro and above).

A caller sees and touches only their own rentals: another user's rental is a 404, as if it did
not exist. ``POST /provision`` takes an ``Idempotency-Key`` header: the same key again (from any
gateway instance, at any time) answers with the rental the first request made and rents nothing
more. The provider's answer is awaited for up to ``GPUBROKER_RENTAL_WAIT_S``: a refusal is a
409 (out of capacity), 402 (insufficient balance), 422 (the provider found the request invalid)
or 502 (the provider refused the credentials) naming the provider's reason; an answer still
outstanding is a 202 with the rental in ``provisioning``, to be followed on ``GET /rentals/{id}``
or the ``rentals`` channel.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status

from gpubroker.core.renting import RentalAction
from gpubroker.gateway import db
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity import audit
from gpubroker.gateway.identity.access import Requires, caller
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import Rental, RentalBudget
from gpubroker.gateway.rentals.budgets import spending
from gpubroker.gateway.rentals.requests import (
    IDEMPOTENCY_HEADER,
    BudgetBody,
    BudgetOut,
    ProvisionBody,
    RentalOut,
    ScaleBody,
    provision_offer,
    rental_json,
    within_budget,
)
from gpubroker.gateway.rentals.service import RentalConflict, refusal_status
from gpubroker.gateway.rentals.states import ENDED, RentalState
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["rentals"], auth=Requires(Permission.RENTALS))
MAX_KEY_LENGTH = 255
LIST_LIMIT = 200


RESPONSES: dict[int, Any] = {401: Error, 403: Error, 404: Error, 409: Error, 422: Error}


@router.post(
    "/provision",
    response={200: RentalOut, 201: RentalOut, 202: RentalOut, 402: Error, 502: Error, **RESPONSES},
    summary="Rent an offer (Idempotency-Key makes a retry safe)",
)
async def provision(request: HttpRequest, body: ProvisionBody) -> Status[dict[str, Any]]:
    """Rent the offer at its current price (snapshotted with its currency) on the provider's API.
    With an ``Idempotency-Key`` header, a retried or concurrent request with the same key returns
    the same rental and never rents twice. 201 once running, 202 while the provider is still
    creating it; a provider's refusal names its reason: 402 balance, 409 capacity, 502 credentials refused."""
    identity = caller(request)
    assert identity.user_id is not None
    key = idempotency_key(request)
    runtime = current()
    rental, created = await provision_offer(
        runtime.rentals, runtime.catalog, body, user_id=identity.user_id, key=key, agent_id=None
    )
    return await provision_answer(rental, created)


async def provision_answer(rental: Rental, created: bool) -> Status[dict[str, Any]]:
    rental = await current().rentals.settled(
        rental.pk, done=lambda r: r.state not in (RentalState.REQUESTED, RentalState.PROVISIONING)
    )
    if rental.state == RentalState.FAILED:
        raise ApiError(
            refusal_status(rental.failure_kind),
            None,
            f"{rental.provider} refused the rental ({rental.failure_kind}): {rental.failure_reason}",
        )
    if rental.state in (RentalState.REQUESTED, RentalState.PROVISIONING):
        return Status(202, rental_json(rental))
    return Status(201 if created else 200, rental_json(rental))


@router.get(
    "/budget", response={200: BudgetOut, 401: Error, 403: Error}, summary="Your rental budget and what you spend"
)
async def get_rental_budget(request: HttpRequest) -> dict[str, Any]:
    """Your own limits on renting (per hour and in total; null is no limit), with what your rentals
    cost per hour now and have cost in all."""
    identity = caller(request)
    assert identity.user_id is not None
    return await budget_json(identity.user_id)


@router.put("/budget", response={200: BudgetOut, 401: Error, 403: Error, 422: Error}, summary="Set your rental budget")
async def set_rental_budget(request: HttpRequest, body: BudgetBody) -> dict[str, Any]:
    """Set your limits on renting: a provision (or scale) that would take your live rentals past
    the budget per hour, or that comes once your rentals have cost the total, is a 402 naming why,
    and nothing is asked of any provider; rentals running once you are past either are ended by
    the reconciler. Both limits are replaced; null (or leaving one out) is no limit."""
    identity = caller(request)
    assert identity.user_id is not None
    await RentalBudget.objects.aupdate_or_create(
        user_id=identity.user_id,
        defaults={"budget_per_hour": body.budget_per_hour, "budget_total": body.budget_total},
    )
    await audit.record(request, identity.subject, "rentals.budget", "")
    return await budget_json(identity.user_id)


async def budget_json(user_id: int) -> dict[str, Any]:
    budget = await RentalBudget.objects.filter(user_id=user_id).afirst()
    spent = await db.run(spending, Q(user_id=user_id), timezone.now())
    return {
        "budget_per_hour": budget.budget_per_hour if budget else None,
        "budget_total": budget.budget_total if budget else None,
        "spent_per_hour": spent.per_hour,
        "spent_total": spent.total,
        "updated_at": budget.updated_at if budget else None,
    }


@router.get("", response={200: list[RentalOut], **RESPONSES}, summary="Your rentals, newest first")
async def list_rentals(
    request: HttpRequest,
    state: str | None = Query(None, description="Only rentals in this state (requested, running, terminated, ...)."),
) -> list[dict[str, Any]]:
    """Your rentals, newest first (at most 200), each with its cost so far or its final cost."""
    identity = caller(request)
    rows = Rental.objects.filter(user_id=identity.user_id).order_by("-created_at")
    if state is not None:
        if state not in set(RentalState):
            raise ApiError(422, "state", f"unknown state {state!r}; one of {', '.join(RentalState)}")
        rows = rows.filter(state=state)
    now = timezone.now()
    return [rental_json(row, now) async for row in rows[:LIST_LIMIT]]


@router.get("/{rental_id}", response={200: RentalOut, **RESPONSES}, summary="One of your rentals, with its cost")
async def get_rental(request: HttpRequest, rental_id: uuid.UUID) -> dict[str, Any]:
    """One of your rentals: its state, the instance at the provider and the cost so far."""
    return rental_json(await own_rental(request, rental_id))


@router.post(
    "/{rental_id}/scale",
    response={200: RentalOut, 202: RentalOut, 402: Error, 502: Error, **RESPONSES},
    summary="Change a running rental's GPUs (where the provider allows it)",
)
async def scale_rental(request: HttpRequest, rental_id: uuid.UUID, body: ScaleBody) -> Status[dict[str, Any]]:
    """Change a running rental's GPU count, on the providers that allow it (docs/rentals.md); the
    cost is billed per stretch, so the new count is billed from now. More GPUs beyond your rental
    budget per hour are a 402."""
    rental = await own_rental(request, rental_id)
    if body.gpu_count > rental.gpu_count and rental.state == RentalState.RUNNING:
        more = rental.price_per_hour / rental.gpu_count * (body.gpu_count - rental.gpu_count)
        await within_budget(rental.user_id, more, "the scale")
    return await scale(rental, body.gpu_count)


async def scale(rental: Rental, gpu_count: int) -> Status[dict[str, Any]]:
    rentals = current().rentals
    provider = rentals.providers.get(rental.provider)
    if provider is None or RentalAction.SCALE not in provider.adapter.renting:
        raise ApiError(409, None, f"{rental.provider} cannot change a running instance's GPUs")
    if gpu_count == rental.gpu_count:
        return Status(200, rental_json(rental))
    try:
        await rentals.scale(rental, gpu_count)
    except RentalConflict as exc:
        raise ApiError(409, None, f"only a running rental can be scaled: {exc}") from None
    rental = await rentals.settled(rental.pk, done=lambda r: r.pending_gpu_count is None)
    if rental.pending_gpu_count is not None:
        return Status(202, rental_json(rental))
    if rental.gpu_count != gpu_count:
        raise ApiError(409, None, f"{rental.provider} refused: {rental.last_error}")
    return Status(200, rental_json(rental))


@router.delete(
    "/{rental_id}",
    response={200: RentalOut, 202: RentalOut, **RESPONSES},
    summary="End a rental; the answer carries its final cost",
)
async def terminate_rental(request: HttpRequest, rental_id: uuid.UUID) -> Status[dict[str, Any]]:
    """Terminate the instance at the provider; 200 with the final cost once it is gone, 202 while
    the provider is still stopping it. Ending a rental twice is harmless."""
    return await terminate(await own_rental(request, rental_id))


async def terminate(rental: Rental) -> Status[dict[str, Any]]:
    rentals = current().rentals
    if rental.state not in ENDED:
        with contextlib.suppress(RentalConflict):  # it moved meanwhile; the wait below says where to
            await rentals.terminate(rental)
    rental = await rentals.settled(rental.pk, done=lambda r: r.state in ENDED)
    return Status(200 if rental.state in ENDED else 202, rental_json(rental))


async def own_rental(request: HttpRequest, rental_id: uuid.UUID) -> Rental:
    identity = caller(request)
    rental = await Rental.objects.filter(pk=rental_id, user_id=identity.user_id).afirst()
    if rental is None:
        raise ApiError(404, "rental_id", f"you have no rental {rental_id}")
    return rental


def idempotency_key(request: HttpRequest) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(422, IDEMPOTENCY_HEADER, f"give 1 to {MAX_KEY_LENGTH} printable characters")
    return key
