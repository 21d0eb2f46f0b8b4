"""Webhook deliveries and every attempt made at them, as the delivery service reports them.

A delivery is keyed by its ``delivery_id`` (the same however often the event behind it is
handled), so registering it again finds the row it already has: that is how a delivery made
twice upstream is sent once. Once an attempt fails, it keeps the signed request exactly as it is
to be sent, for the attempts that follow (and the dead-letter topic); a delivery that succeeds
the first time never needs it, so it is not carried there and back. Attempts are unique per
(delivery, number), so a report sent twice is recorded once.
"""

from __future__ import annotations

from django.db import models

from gpubroker.gateway.models.features import Webhook

STATUSES = [
    ("pending", "pending"),
    ("delivered", "delivered"),
    ("failed", "failed"),
    ("refused", "refused"),
    ("exhausted", "exhausted"),
    ("cancelled", "cancelled"),
]
FINAL = frozenset({"delivered", "failed", "refused", "exhausted", "cancelled"})


class WebhookDelivery(models.Model):
    delivery_id = models.CharField(max_length=64, unique=True)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    url = models.CharField(max_length=500)
    body = models.TextField(default="", help_text="The signed request, kept once an attempt has failed.")
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(help_text="When the event was made into this delivery.")
    status = models.CharField(max_length=16, choices=STATUSES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True)
    next_attempt_at = models.DateTimeField(null=True, help_text="When a pending delivery is due (again).")
    finished_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["webhook", "created_at"]),
        ]


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True)
    error = models.CharField(max_length=300, null=True)
    latency_ms = models.FloatField(null=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]
