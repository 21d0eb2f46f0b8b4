"""Provider health, its history and the price history.

Every gateway instance consumes every record, so writes are idempotent: a provider's row is
upserted, and a price observation is unique per (offer, time) so duplicates are ignored.
"""

from __future__ import annotations

from django.db import models


class ProviderStatus(models.Model):
    name = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16)
    source = models.CharField(max_length=16, null=True)
    data_as_of = models.DateTimeField(null=True)
    last_poll_at = models.DateTimeField(null=True)
    last_success_at = models.DateTimeField(null=True)
    last_error = models.TextField(null=True)
    offers = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class PriceObservation(models.Model):
    offer_id = models.CharField(max_length=36)
    provider = models.CharField(max_length=64)
    gpu_type = models.CharField(max_length=64, null=True)
    region = models.CharField(max_length=128)
    price_per_hour = models.DecimalField(max_digits=14, decimal_places=6)
    observed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["offer_id", "observed_at"], name="one_price_per_offer_and_time")]
        indexes = [
            models.Index(fields=["gpu_type", "observed_at"]),
            models.Index(fields=["provider", "observed_at"]),
            models.Index(fields=["observed_at"]),
        ]


class HealthCheck(models.Model):
    """One poll's outcome for a provider, kept ``health_history_days`` (7 by default)."""

    provider = models.CharField(max_length=64)
    event_type = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    error = models.TextField(null=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_type", "at"], name="one_check_per_provider_event")
        ]
        indexes = [models.Index(fields=["at"])]
