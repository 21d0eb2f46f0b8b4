"""Moving rentals: what a request records and asks of a provider's worker, and what each of the
worker's results does to the rental.

Database work runs through ``gateway.db`` (off the event loop, connection released after), as
all the gateway's background work does. The database is the truth and the only coordination
between gateway instances: a provision is
one row, made unique per user by its ``Idempotency-Key`` (a unique constraint, so two instances
racing on the same key record one rental and send one command); a state moves only by a
conditional update from the state it was read in, so two instances applying results never move
it twice. Each move's ``RentalEvent`` is written in the same transaction (``rentals.outbox``)
and relayed from there to ``gpubroker.rental-events``, so no move goes unannounced. A rental
is made with its user's own provider credentials when their plan has integrations and they stored
some for the provider, else with the platform's; every command names which (by reference).

A worker's result can arrive at any gateway instance (they share the results' consumer group);
the instance that took the request waits by reading the row.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from gpubroker.core.bus import Bus
from gpubroker.core.plugins import RegisteredProvider, load_providers
from gpubroker.core.rental_messages import (
    RENTAL_COMMANDS,
    RENTAL_RESULTS,
    RentalCommand,
    RentalEvent,
    RentalResult,
)
from gpubroker.core.renting import RefusalKind, RentalRequest, can_rent
from gpubroker.core.settings import Settings
from gpubroker.gateway import db
from gpubroker.gateway.identity.plans import PERMISSIONS, Permission, Plan
from gpubroker.gateway.models import Integration, Rental, User
from gpubroker.gateway.models.rentals import CREDENTIALS_PLATFORM, CREDENTIALS_USER
from gpubroker.gateway.rentals import outbox
from gpubroker.gateway.rentals.states import ENDED, RentalState, check

log = logging.getLogger(__name__)
RESULTS_GROUP = "gpubroker-gateway-rentals"
WAIT_STEP_S = 0.05


class RentalConflict(Exception):
    """The rental moved under us (another instance applied a result first)."""


@dataclass(frozen=True)
class Offered:
    """What a provision rents: the offer as the catalogue had it at request time."""

    offer_id: str
    provider: str
    provider_offer_id: str
    gpu_type: str | None
    gpu_count: int
    region: str
    price_per_hour: Decimal
    currency: str


class Rentals:
    """The rental service of one gateway instance."""

    def __init__(self, bus: Bus, settings: Settings, *, wait_s: float) -> None:
        self._bus = bus
        self._settings = settings
        self._providers: dict[str, RegisteredProvider] | None = None
        self._wait_s = wait_s
        self.relay = outbox.EventRelay(bus)
        """Takes each move's event from the database to ``gpubroker.rental-events`` (run by the runtime)."""
        self.on_instances: Any = None
        """Where listings for the reconciler go (set by the reconciler)."""

    @property
    def providers(self) -> dict[str, RegisteredProvider]:
        """The installed (and allowed) plugins that can rent, by name; loaded on first use."""
        if self._providers is None:
            registry = load_providers(allow=self._settings.plugins, block=self._settings.plugins_blocked)
            self._providers = {p.info.name: p for p in registry if can_rent(p.adapter)}
        return self._providers

    # Requests

    async def provision(
        self,
        *,
        user_id: int,
        offered: Offered,
        key: str | None,
        image: str = "",
        ssh_public_key: str = "",
        options: dict[str, str] | None = None,
        agent_id: uuid.UUID | None = None,
    ) -> tuple[Rental, bool]:
        """Record the rental and ask the provider's worker to create it; ``(rental, False)`` when
        ``key`` was used before (nothing new is asked of anyone)."""
        provider = self.providers[offered.provider]
        try:
            rental = await db.run(
                _create_announced,
                credentials=await db.run(credentials_for, user_id, offered.provider),
                user_id=user_id,
                agent_id=agent_id,
                idempotency_key=key,
                provider=offered.provider,
                offer_id=offered.offer_id,
                provider_offer_id=offered.provider_offer_id,
                gpu_type=offered.gpu_type,
                gpu_count=offered.gpu_count,
                region=offered.region,
                image=image,
                ssh_public_key=ssh_public_key,
                options=options or {},
                price_per_hour=offered.price_per_hour,
                currency=offered.currency,
                billing_granularity_s=provider.adapter.billing_granularity_s,
            )
        except IntegrityError:
            return await db.run(Rental.objects.get, user_id=user_id, idempotency_key=key), False
        self.relay.wake()
        await self._move(rental, RentalState.PROVISIONING)
        await self._command(rental, "provision")
        return rental, True

    async def scale(self, rental: Rental, gpu_count: int) -> None:
        """Ask the provider to change the running instance to ``gpu_count`` GPUs."""
        updated = await db.run(
            _update, rental.pk, RentalState.RUNNING.value, pending_gpu_count=gpu_count, last_error=""
        )
        if not updated:
            raise RentalConflict(f"the rental is {rental.state}, not running")
        await self._command(rental, "scale", gpu_count=gpu_count)

    async def terminate(self, rental: Rental) -> Rental:
        """Ask the provider to end the rental's instance (whatever it created, if still provisioning)."""
        if rental.state not in (RentalState.TERMINATING, *ENDED):
            await self._move(rental, RentalState.TERMINATING)
        if rental.state == RentalState.TERMINATING:
            await self._command(rental, "terminate")
        return rental

    async def settled(self, rental_id: uuid.UUID, *, done: Any, timeout_s: float | None = None) -> Rental:
        """The rental once ``done(rental)`` holds, or as it is when the wait is over."""
        deadline = asyncio.get_running_loop().time() + (self._wait_s if timeout_s is None else timeout_s)
        while True:
            rental = await db.run(Rental.objects.get, pk=rental_id)
            if done(rental) or asyncio.get_running_loop().time() >= deadline:
                return rental
            await asyncio.sleep(WAIT_STEP_S)

    # Results

    async def run(self) -> None:
        """Apply the workers' results, each once across the gateway instances."""
        async for record in self._bus.subscribe([RENTAL_RESULTS], group=RESULTS_GROUP):
            if record.value is None:
                continue
            try:
                result = RentalResult.decode(record.value)
            except ValueError as exc:
                log.warning("skipped a rental result that cannot be read: %s", exc)
                continue
            try:
                await self.apply(result)
            except Exception:
                log.exception("applying the %s result of rental %s failed", result.action, result.rental_id)

    async def apply(self, result: RentalResult) -> None:
        if result.action == "instances":
            if self.on_instances is not None:
                await self.on_instances(result)
            return
        if not result.rental_id:  # ending an instance no rental owned (the reconciler's): nothing to record
            return
        rental = await db.run(_find, result.rental_id)
        if rental is None:
            log.warning("a %s result names rental %s, which does not exist", result.action, result.rental_id)
            return
        at = result_time(result.at)
        try:
            if result.action == "provision":
                await self._provisioned(rental, result, at)
            elif result.action == "scale":
                await self._scaled(rental, result, at)
            elif result.action == "terminate":
                await self._terminated(rental, result, at)
            elif result.action == "status" and result.outcome == "gone" and rental.state == RentalState.RUNNING:
                await self.close(rental, at, "vanished")
        except RentalConflict:
            log.info("rental %s moved while its %s result was applied; it is left as is", rental.pk, result.action)

    async def _provisioned(self, rental: Rental, result: RentalResult, at: datetime) -> None:
        instance = result.instance
        if result.outcome == "ok" and instance is not None:
            if rental.state == RentalState.PROVISIONING:
                await self.adopt(rental, instance.instance_id, at)
            elif rental.state == RentalState.TERMINATING and not rental.instance_id:
                await self._set(rental, instance_id=instance.instance_id, started_at=at, stretch_started_at=at)
                await self._command(rental, "terminate")
            elif rental.state in ENDED:  # it was given up on; whatever exists now must end
                await self._command(rental, "terminate", instance_id=instance.instance_id)
        elif result.outcome == "refused" and result.refusal is not None:
            if rental.state == RentalState.TERMINATING:
                await self._move(rental, RentalState.TERMINATED, ended_at=at, final_cost=Decimal(0))
            elif rental.state in (RentalState.REQUESTED, RentalState.PROVISIONING):
                await self._move(
                    rental,
                    RentalState.FAILED,
                    ended_at=at,
                    final_cost=Decimal(0),
                    failure_kind=result.refusal.kind.value,
                    failure_reason=result.refusal.reason,
                )
        else:  # unknown outcome: the instance may exist; the reconciler finds it by its tag
            await self._set(rental, last_error=result.why)

    async def _scaled(self, rental: Rental, result: RentalResult, at: datetime) -> None:
        if result.outcome != "ok" or result.instance is None or rental.state != RentalState.RUNNING:
            await self._set(rental, pending_gpu_count=None, last_error=f"scale failed: {result.why}")
            return
        gpu_count = result.instance.gpu_count or rental.pending_gpu_count or rental.gpu_count
        per_gpu = rental.price_per_hour / rental.gpu_count
        billed = rental.cost_at(at)
        await self._set(
            rental,
            event_type="scaled",
            gpu_count=gpu_count,
            pending_gpu_count=None,
            price_per_hour=(per_gpu * gpu_count).quantize(Decimal("0.000001")),
            billed_before=billed,
            stretch_started_at=at,
        )

    async def _terminated(self, rental: Rental, result: RentalResult, at: datetime) -> None:
        if result.outcome in ("ok", "gone"):
            if rental.state in (RentalState.TERMINATING, RentalState.RUNNING):
                await self.close(rental, at, "terminated")
        else:
            await self._set(rental, last_error=f"terminate failed: {result.why}")

    # Moves the reconciler shares

    async def adopt(self, rental: Rental, instance_id: str, started_at: datetime) -> None:
        """The provider created the rental's instance: it runs, and is billed, from ``started_at``."""
        await self._move(
            rental, RentalState.RUNNING, instance_id=instance_id, started_at=started_at, stretch_started_at=started_at
        )

    async def close(self, rental: Rental, ended_at: datetime, event_type: str) -> None:
        """The instance has ended at ``ended_at``: the rental ends with its final cost."""
        rental.ended_at = ended_at
        final = rental.cost_at(ended_at)
        await self._move(rental, RentalState.TERMINATED, ended_at=ended_at, final_cost=final, event_type=event_type)

    async def fail(self, rental: Rental, kind: str, reason: str) -> None:
        await self._move(
            rental,
            RentalState.FAILED,
            ended_at=timezone.now(),
            final_cost=Decimal(0),
            failure_kind=kind,
            failure_reason=reason,
        )

    async def command(self, rental: Rental, action: str, **fields: Any) -> None:
        await self._command(rental, action, **fields)

    async def end_untracked(self, provider: str, instance_id: str, tag: str | None, credentials: str) -> None:
        """End an instance carrying our tag that no live rental owns, on the account ``credentials``
        listed it in."""
        command = RentalCommand(
            str(uuid.uuid4()), provider, "terminate", instance_id=instance_id, credentials=credentials
        )
        await self._bus.publish(RENTAL_COMMANDS, instance_id, command.encode())
        log.warning("%s: ending instance %s (tag %s): no live rental owns it", provider, instance_id, tag)

    # Internals

    async def _move(self, rental: Rental, new: RentalState, *, event_type: str | None = None, **fields: Any) -> None:
        """Move the rental to ``new`` from the state it was read in, and record its event, in one
        transaction; ``RentalConflict`` when it moved meanwhile."""
        check(rental.state, new)
        moved = await db.run(_apply, rental, rental.state, {"state": new.value, **fields}, event_type or new.value)
        if not moved:
            raise RentalConflict(f"rental {rental.pk} is no longer {rental.state}")
        self.relay.wake()

    async def _set(self, rental: Rental, *, event_type: str | None = None, **fields: Any) -> None:
        """Change the rental's fields whatever its state (and record ``event_type``, if given, with them)."""
        await db.run(_apply, rental, None, fields, event_type)
        if event_type is not None:
            self.relay.wake()

    async def _command(self, rental: Rental, action: str, **fields: Any) -> None:
        request = RentalRequest(
            tag=rental.tag,
            provider_offer_id=rental.provider_offer_id,
            gpu_count=rental.gpu_count,
            region=rental.region,
            image=rental.image,
            ssh_public_key=rental.ssh_public_key,
            options=rental.options,
        )
        command = RentalCommand(
            str(uuid.uuid4()),
            rental.provider,
            action,
            rental_id=str(rental.pk),
            request=request,
            instance_id=fields.get("instance_id", rental.instance_id),
            gpu_count=fields.get("gpu_count", 0),
            credentials=rental.credentials_ref,
        )
        await self._bus.publish(RENTAL_COMMANDS, str(rental.pk), command.encode())


def _event(rental: Rental, event_type: str) -> RentalEvent:
    """The rental's event as it is now (cost so far, final cost once ended)."""
    now = timezone.now()
    data: dict[str, Any] = {
        "instance_id": rental.instance_id or None,
        "gpu_count": rental.gpu_count,
        "price_per_hour": rental.price_per_hour,
        "currency": rental.currency,
        "cost": rental.cost_at(now),
        "final_cost": rental.final_cost,
    }
    if rental.failure_kind:
        data["failure"] = {"kind": rental.failure_kind, "reason": rental.failure_reason}
    return RentalEvent(str(rental.pk), rental.user_id, event_type, rental.state, rental.provider, now, data)


def _create_announced(**fields: Any) -> Rental:
    """Record a new rental and its ``requested`` event together."""
    with transaction.atomic():
        rental = Rental.objects.create(**fields)
        outbox.record(_event(rental, "requested"))
    return rental


def _apply(rental: Rental, expected: str | None, changes: dict[str, Any], event_type: str | None) -> bool:
    """Update the rental (only from state ``expected``, when given) and record its event in one
    transaction; the row is updated first, so a rental's events are written in the order of its
    moves. ``rental`` takes the changes when they were made."""
    after = copy.copy(rental)
    for name, value in changes.items():
        setattr(after, name, value)
    with transaction.atomic():
        if not _update(rental.pk, expected, **changes):
            return False
        if event_type is not None:
            outbox.record(_event(after, event_type))
    for name, value in changes.items():
        setattr(rental, name, value)
    return True


def credentials_for(user_id: int, provider: str) -> str:
    """Whose credentials a new rental of ``user_id`` on ``provider`` uses: the user's own when
    their plan has integrations and they stored some for the provider, else the platform's."""
    plan = User.objects.filter(pk=user_id).values_list("plan", flat=True).first()
    own = plan is not None and Permission.INTEGRATIONS in PERMISSIONS[Plan(plan)]
    if own and Integration.objects.filter(user_id=user_id, provider=provider).exists():
        return CREDENTIALS_USER
    return CREDENTIALS_PLATFORM


def _find(rental_id: str) -> Rental | None:
    return Rental.objects.filter(pk=rental_id).first()


def _update(rental_id: uuid.UUID, expected: str | None, **fields: Any) -> int:
    """Update a rental (only if it is still in state ``expected``, when given); how many rows changed."""
    rows = Rental.objects.filter(pk=rental_id)
    fields = {"updated_at": timezone.now(), **fields}  # a queryset's update does not set auto_now fields
    return rows.filter(state=expected).update(**fields) if expected is not None else rows.update(**fields)


def refusal_status(kind: str) -> int:
    """The HTTP status a provider's refusal is answered with."""
    if kind == RefusalKind.INSUFFICIENT_BALANCE:
        return 402
    if kind in (RefusalKind.OUT_OF_CAPACITY, RefusalKind.NOT_FOUND):
        return 409
    if kind == RefusalKind.INVALID:
        return 422
    return 502  # the provider refused the platform's credentials, or failed: not the caller's doing


def result_time(text: str) -> datetime:
    """When a worker's result says it happened (now, if it does not say)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return timezone.now()
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.now().tzinfo)
