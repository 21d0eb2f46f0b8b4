"""What users keep: favourite offers, price alerts, webhooks and provider integrations.

Secrets never enter the database: a webhook's signing secret and an integration's credentials
live in the vault, under paths named by these rows.
"""

from __future__ import annotations

from django.db import models

from gpubroker.core.vault_policies import integration_path
from gpubroker.gateway.models.accounts import User
from gpubroker.gateway.realtime.deliveries import secret_path


class Favorite(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="favorites")
    offer_id = models.CharField(max_length=36)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "offer_id"], name="one_favorite_per_offer")]


class PriceAlert(models.Model):
    """Notify when an offer matching ``filters`` is priced below (or above) ``price``."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="alerts")
    filters = models.JSONField(default=dict)
    direction = models.CharField(max_length=8, choices=[("below", "below"), ("above", "above")])
    price = models.DecimalField(max_digits=14, decimal_places=6)
    per_gpu = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_triggered_at = models.DateTimeField(null=True)


class Webhook(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, help_text="The first failed attempt since the last delivery.")
    disabled_reason = models.CharField(max_length=300, null=True)

    @property
    def secret_path(self) -> str:
        return secret_path(self.pk)


class Integration(models.Model):
    """An Enterprise user's own credentials for a provider (the values are in the vault)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=64)
    fields = models.JSONField(default=list, help_text="The credential names stored, never their values.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "provider"], name="one_integration_per_provider")]

    @property
    def secret_path(self) -> str:
        return integration_path(self.user_id, self.provider)
