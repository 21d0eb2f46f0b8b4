"""Rentals, users' budgets for them, the agents that may make them, and the leases that elect one
reconciler.

A rental keeps what it was rented at (the offer's price and currency when it was asked for, the
provider's billing granularity), so its cost never depends on today's catalogue. The cost of a
rental is the sum of its billing stretches (a new stretch starts when it is scaled): each
stretch is billed in whole units of the provider's granularity, as the provider bills it.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import models

from gpubroker.gateway.models.accounts import ApiKey, User

COST_PLACES = Decimal("0.000001")
CREDENTIALS_PLATFORM = "platform"
CREDENTIALS_USER = "user"


class Agent(models.Model):
    """An autonomous client acting for a user (SRS B.3), within budgets and a scope."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="agents")
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="agents", null=True)
    """The API key the agent's service token was made from: revoking it ends the agent too."""
    name = models.CharField(max_length=100)
    budget_per_hour = models.DecimalField(max_digits=14, decimal_places=6)
    """USD per hour that the agent's running rentals may cost together."""
    budget_total = models.DecimalField(max_digits=14, decimal_places=6)
    """USD that the agent's rentals may cost in all, ended ones included."""
    allowed_providers = models.JSONField(default=list)
    allowed_gpu_types = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)


class RentalBudget(models.Model):
    """A user's own limits on what their rentals may cost (``/api/v2/rentals/budget``); a limit
    left empty is no limit."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="rental_budget")
    budget_per_hour = models.DecimalField(max_digits=14, decimal_places=6, null=True)
    """USD per hour that the user's live rentals may cost together."""
    budget_total = models.DecimalField(max_digits=14, decimal_places=6, null=True)
    """USD that the user's rentals may cost in all, ended ones included."""
    updated_at = models.DateTimeField(auto_now=True)


class Rental(models.Model):
    """One instance rented through the broker; ``state`` moves only as ``rentals.states`` allows."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="rentals")
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, related_name="rentals", null=True)
    idempotency_key = models.CharField(max_length=255, null=True)
    provider = models.CharField(max_length=64)
    offer_id = models.CharField(max_length=36)
    provider_offer_id = models.CharField(max_length=255)
    gpu_type = models.CharField(max_length=64, null=True)
    gpu_count = models.PositiveIntegerField()
    region = models.CharField(max_length=128, default="")
    image = models.CharField(max_length=255, default="")
    ssh_public_key = models.TextField(default="")
    options = models.JSONField(default=dict, help_text="Provider options (names, never secrets).")
    price_per_hour = models.DecimalField(max_digits=14, decimal_places=6)
    """The instance's price now (the offer's at rent time, per GPU times the GPUs after a scale)."""
    currency = models.CharField(max_length=3, default="USD")
    billing_granularity_s = models.PositiveIntegerField()
    credentials = models.CharField(max_length=16, default=CREDENTIALS_PLATFORM)
    """Whose account at the provider the instance is rented on: ``platform`` (the platform's
    credentials) or ``user`` (the user's own, from their integration)."""
    state = models.CharField(max_length=16, default="requested")
    instance_id = models.CharField(max_length=255, default="")
    failure_kind = models.CharField(max_length=32, default="")
    failure_reason = models.TextField(default="")
    pending_gpu_count = models.PositiveIntegerField(null=True)
    """A scale asked of the provider and not answered yet."""
    last_error = models.TextField(default="")
    """The provider's last refusal or failure of an action that left the state as it was."""
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True)
    """When the provider created the instance: billing starts here."""
    ended_at = models.DateTimeField(null=True)
    billed_before = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    """The cost of the stretches closed by a scale."""
    stretch_started_at = models.DateTimeField(null=True)
    final_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="one_rental_per_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["state"]), models.Index(fields=["provider", "state"])]

    @property
    def credentials_ref(self) -> str:
        """Whose credentials its commands name to the provider's worker (``core.secrets``)."""
        from gpubroker.core.secrets import PLATFORM_CREDENTIALS, user_credentials_ref

        return user_credentials_ref(self.user_id) if self.credentials == CREDENTIALS_USER else PLATFORM_CREDENTIALS

    @property
    def tag(self) -> str:
        from gpubroker.core.renting import rental_tag

        return rental_tag(str(self.id))

    def cost_at(self, now: datetime) -> Decimal:
        """What the rental has cost by ``now`` (by its end, once ended)."""
        if self.stretch_started_at is None:
            return self.billed_before
        end = self.ended_at or now
        return (
            self.billed_before
            + stretch_cost(self.price_per_hour, self.billing_granularity_s, self.stretch_started_at, end)
        ).quantize(COST_PLACES, ROUND_HALF_EVEN)


def stretch_cost(price_per_hour: Decimal, granularity_s: int, start: datetime, end: datetime) -> Decimal:
    """One billing stretch, every started unit of ``granularity_s`` billed whole."""
    seconds = max(0.0, (end - start).total_seconds())
    units = math.ceil(seconds / granularity_s - 1e-9) if seconds > 0 else 0
    return (price_per_hour * units * granularity_s / 3600).quantize(COST_PLACES, ROUND_HALF_EVEN)


class RentalEventRecord(models.Model):
    """A rental event not yet on ``gpubroker.rental-events``: written in the transaction that
    moved the rental, deleted in the transaction that saw Kafka acknowledge it
    (``rentals.outbox``). Its id is the event's ``sequence``."""

    id = models.BigAutoField(primary_key=True)
    rental = models.ForeignKey(Rental, on_delete=models.CASCADE, related_name="unsent_events")
    event = models.JSONField(help_text="The rental-event/1 record, without its sequence.")
    created_at = models.DateTimeField(auto_now_add=True)


class AgentAction(models.Model):
    """One asynchronous action an agent asked for, and how it went."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="actions")
    action_type = models.CharField(max_length=16)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, default="pending")
    """pending, running, succeeded, refused or failed."""
    result = models.JSONField(null=True)
    reason = models.TextField(default="")
    rental = models.ForeignKey(Rental, on_delete=models.SET_NULL, null=True, related_name="actions")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class Lease(models.Model):
    """Who leads a task across gateway instances until ``expires_at`` (the reconciler)."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
