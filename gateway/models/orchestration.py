"""What the platform's scheduled work reports back: plugin-health verdicts and the FX rate table.

A verdict is one row per provider, the latest run's, with the number of failed runs in a row
(``provider.degraded`` is raised when it reaches the configured count). The FX table keeps each
day's refreshed rates; the newest is the one in use, the bundled table the fallback.
"""

from __future__ import annotations

from django.db import models


class ProviderVerdict(models.Model):
    provider = models.CharField(max_length=64, unique=True)
    passed = models.BooleanField()
    checks = models.JSONField(default=list, help_text="Each check's name, outcome and detail.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    degraded = models.BooleanField(default=False, help_text="provider.degraded was raised and not yet recovered.")
    run_id = models.CharField(max_length=250, help_text="The run that reported it: a retried report counts once.")
    reported_at = models.DateTimeField()


class FxRates(models.Model):
    as_of = models.DateField(unique=True)
    source = models.CharField(max_length=100)
    usd_per_unit = models.JSONField(help_text="Currency code -> US dollars per unit, as decimal strings.")
    fetched_at = models.DateTimeField()
