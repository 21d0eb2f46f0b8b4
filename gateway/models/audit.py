"""The audit log: security-relevant actions, who did them, from where and how it went.

Kept ``audit_history_days`` (90 by default, SRS 7.3). Never holds a secret: actions name what
was touched (a key's prefix, a provider), not values.
"""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=128, help_text="user:<id>, apikey:<prefix>, ip:<address> or system")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=256, blank=True, default="")
    outcome = models.CharField(max_length=16)
    client = models.CharField(max_length=64, blank=True, default="")
