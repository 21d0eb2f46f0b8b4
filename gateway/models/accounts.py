"""Users, their API keys and their refresh tokens.

Passwords are stored as Argon2 hashes (Django's hashers); API keys as SHA-256 digests (they are
random and long, so a fast digest is enough and lookups stay cheap) and shown once, when made.
"""

from __future__ import annotations

from django.db import models

from gpubroker.gateway.identity.plans import Plan

PLANS = [(plan.value, plan.value) for plan in Plan if plan is not Plan.ANONYMOUS]


class User(models.Model):
    email = models.EmailField(unique=True)
    password = models.CharField(max_length=256)
    plan = models.CharField(max_length=16, choices=PLANS, default=Plan.FREE.value)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"user {self.pk} ({self.plan})"


class ApiKey(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it in a list.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"api key {self.prefix}..."


class RefreshToken(models.Model):
    """Each refresh token is used once: refreshing revokes it and issues the next."""

    jti = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    expires_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)
