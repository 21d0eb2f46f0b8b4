"""Keeping the providers and the database in step, so no spend leaks.

One gateway instance leads (a lease row renewed every interval; another instance takes over
when it lapses). Every ``reconcile_interval_s`` the leader asks each renting provider's worker
for the instances of each account rentals are made on: the platform's, and each user's own
(their credentials) while they have a live rental there and for ``USER_ACCOUNT_WATCH_S`` after
their last one changed. Whichever instance receives a listing applies it to the rentals made
with that listing's credentials (the rules are conditional updates, so applying one twice
changes nothing):

- an instance carrying our tag whose rental is still being provisioned (the gateway crashed, or
  the provider's answer was lost, after the instance was created) is adopted: the rental runs,
  billed from when it was requested;
- an instance carrying our tag that no live rental owns (unknown, or already ended) is
  terminated;
- a rental asked to end whose instance is still listed is asked again;
- a running or ending rental whose instance is no longer listed is closed with its cost up to
  the listing;
- a provisioning rental that never appeared within ``rental_provision_timeout_s`` fails;
- an agent's rental running past the agent's total budget, or while the agent's running rentals
  cost more per hour than its hourly budget, is terminated; so is a user's, against the budget the
  user set themselves (``rentals.budgets``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from gpubroker.core.bus import Bus
from gpubroker.core.rental_messages import RENTAL_COMMANDS, RentalCommand, RentalResult
from gpubroker.core.renting import InstanceState
from gpubroker.core.secrets import PLATFORM_CREDENTIALS, credentials_user, user_credentials_ref
from gpubroker.core.settings import Settings
from gpubroker.gateway import db
from gpubroker.gateway.models import Agent, Lease, Rental, RentalBudget
from gpubroker.gateway.models.rentals import CREDENTIALS_PLATFORM, CREDENTIALS_USER
from gpubroker.gateway.rentals.budgets import over_budget, user_over_budget
from gpubroker.gateway.rentals.service import RentalConflict, Rentals, result_time
from gpubroker.gateway.rentals.states import ENDED, LIVE, RentalState

log = logging.getLogger(__name__)
LEASE = "rental-reconciler"
USER_ACCOUNT_WATCH_S = 24 * 3600.0
"""How long after a user's last rental with their own credentials changed their account is still
listed: an instance created after its rental was given up on is found and ended in that time."""


class Reconciler:
    def __init__(self, bus: Bus, rentals: Rentals, settings: Settings, *, holder: str | None = None) -> None:
        self._bus = bus
        self._rentals = rentals
        self._interval_s = settings.reconcile_interval_s
        self._provision_timeout_s = settings.rental_provision_timeout_s
        self.holder = holder or f"gateway-{uuid.uuid4()}"
        self.leading = False
        rentals.on_instances = self.reconcile

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._interval_s)
                try:
                    await self.tick()
                except Exception:
                    log.exception("reconciling rentals failed; trying again next interval")
        finally:
            if self.leading:
                await asyncio.shield(self.release())

    async def tick(self) -> None:
        """Lead if no one else does, and if leading ask every renting provider for its instances."""
        self.leading = await self.acquire()
        if not self.leading:
            return
        since = timezone.now() - timedelta(seconds=USER_ACCOUNT_WATCH_S)
        for provider in self._rentals.providers:
            for credentials in await db.run(_accounts, provider, since):
                command = RentalCommand(str(uuid.uuid4()), provider, "instances", credentials=credentials)
                await self._bus.publish(RENTAL_COMMANDS, f"instances:{provider}:{credentials}", command.encode())

    async def acquire(self) -> bool:
        """Take or renew the lease for three intervals; False while another holder has it."""
        now = timezone.now()
        until = now + timedelta(seconds=3 * self._interval_s)
        return await db.run(_lease, self.holder, now, until)

    async def release(self) -> None:
        await db.run(lambda: Lease.objects.filter(name=LEASE, holder=self.holder).delete())

    async def reconcile(self, listing: RentalResult) -> None:
        """Apply one provider's listing (see the module's docstring)."""
        if listing.outcome != "ok":
            log.warning("%s: listing instances failed (%s); reconciled next interval", listing.provider, listing.why)
            return
        listed_at = result_time(listing.at)
        account = listing.credentials
        tagged = {
            i.rental_id: i
            for i in listing.instances
            if i.rental_id is not None and i.state is not InstanceState.TERMINATED
        }
        known = {str(r.pk): r for r in await db.run(_known, listing.provider, _uuids(tagged), account)}
        for rental_id, instance in tagged.items():
            rental = known.get(rental_id)
            try:
                if rental is None or rental.state in ENDED:
                    await self._rentals.end_untracked(listing.provider, instance.instance_id, instance.tag, account)
                elif rental.credentials_ref != account:
                    continue  # two credential sets see one account: the rental's own listing handles it
                elif rental.state == RentalState.PROVISIONING:
                    await self._rentals.adopt(rental, instance.instance_id, rental.created_at)
                elif rental.state == RentalState.TERMINATING:
                    await self._rentals.command(rental, "terminate", instance_id=instance.instance_id)
            except RentalConflict:
                continue
        for rental_id, rental in known.items():
            if rental_id in tagged or rental.state in ENDED or rental.credentials_ref != account:
                continue
            try:
                await self._absent(rental, listed_at)
            except RentalConflict:
                continue
        await self._enforce_budgets(listing.provider, listed_at)

    async def _absent(self, rental: Rental, listed_at: datetime) -> None:
        """A live rental whose instance the listing does not show. Only an instance created
        before the listing was asked for can be missing from it."""
        started = rental.started_at
        if rental.state in (RentalState.RUNNING, RentalState.TERMINATING):
            if started is not None and started < listed_at:
                event = "vanished" if rental.state == RentalState.RUNNING else "terminated"
                await self._rentals.close(rental, listed_at, event)
        elif rental.state == RentalState.PROVISIONING and _before(
            rental.created_at, listed_at, self._provision_timeout_s
        ):
            await self._rentals.fail(rental, "not_created", "the provider never created the instance")

    async def _enforce_budgets(self, provider: str, now: datetime) -> None:
        """End the running rentals of each agent, and each user, renting here past a budget."""
        for agent in await db.run(_agents_renting, provider):
            over = await over_budget(agent, now)
            if over:
                await self._end_running(Rental.objects.filter(agent=agent), f"agent {agent.pk} is over budget ({over})")
        for user_id in await db.run(_budgeted_users_renting, provider):
            over = await user_over_budget(user_id, now)
            if over:
                await self._end_running(
                    Rental.objects.filter(user_id=user_id), f"user {user_id} is over budget ({over})"
                )

    async def _end_running(self, rentals: QuerySet[Rental], why: str) -> None:
        for rental in await db.run(_rows, rentals.filter(state=RentalState.RUNNING)):
            log.warning("%s: ending rental %s", why, rental.pk)
            try:
                await self._rentals.terminate(rental)
            except RentalConflict:
                continue


def _lease(holder: str, now: datetime, until: datetime) -> bool:
    renewed = Lease.objects.filter(Q(name=LEASE), Q(holder=holder) | Q(expires_at__lt=now)).update(
        holder=holder, expires_at=until
    )
    if renewed:
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=LEASE, holder=holder, expires_at=until)
    except IntegrityError:
        return False
    return True


def _accounts(provider: str, since: datetime) -> list[str]:
    """The credential sets to list ``provider``'s instances with: the platform's, and each user's
    own that has a live rental there or had one until ``since``."""
    users = (
        Rental.objects.filter(provider=provider, credentials=CREDENTIALS_USER)
        .filter(Q(state__in=[s.value for s in LIVE]) | Q(updated_at__gte=since))
        .values_list("user_id", flat=True)
        .distinct()
    )
    return [PLATFORM_CREDENTIALS, *(user_credentials_ref(user_id) for user_id in sorted(users))]


def _known(provider: str, tagged: list[uuid.UUID], account: str) -> list[Rental]:
    """The rentals a listing of ``account`` speaks of: those its tagged instances name, and the
    live ones made with its credentials (only those can be missing from it)."""
    user_id = credentials_user(account)
    mine = Q(credentials=CREDENTIALS_PLATFORM) if user_id is None else Q(credentials=CREDENTIALS_USER, user_id=user_id)
    live = (Q(state__in=[s.value for s in LIVE]) & mine) | Q(pk__in=tagged)
    return list(Rental.objects.filter(Q(provider=provider), live))


def _agents_renting(provider: str) -> list[Agent]:
    running = Rental.objects.filter(provider=provider, state=RentalState.RUNNING, agent__isnull=False)
    return list(Agent.objects.filter(pk__in=running.values("agent_id")))


def _budgeted_users_renting(provider: str) -> list[int]:
    running = Rental.objects.filter(provider=provider, state=RentalState.RUNNING)
    budgeted = RentalBudget.objects.filter(user_id__in=running.values("user_id"))
    return list(budgeted.values_list("user_id", flat=True))


def _rows(query: QuerySet[Rental]) -> list[Rental]:
    return list(query)


def _before(moment: datetime, reference: datetime, seconds: float) -> bool:
    return moment < reference - timedelta(seconds=seconds)


def _uuids(tagged: dict[str | None, object]) -> list[uuid.UUID]:
    found = []
    for rental_id in tagged:
        try:
            found.append(uuid.UUID(str(rental_id)))
        except ValueError:
            continue
    return found
