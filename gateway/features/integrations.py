"""``/api/v2/providers/config/integrations``: an Enterprise user's own provider credentials.

The values go to the vault at once and are never returned, stored in the database or logged;
the database keeps which provider and which credential names, so a user can see what is set.
The two are stored both or neither: the vault first (a vault that is away is a 503 and nothing
changes), then the row; a row that cannot be written puts the vault back as it was.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from django.db import IntegrityError
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from gpubroker.core.errors import VaultUnavailable
from gpubroker.core.plugins import ProviderRegistry, load_providers
from gpubroker.gateway import errors
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity import audit
from gpubroker.gateway.identity.access import Requires, caller
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import Integration
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

log = logging.getLogger(__name__)
router = Router(tags=["integrations"], auth=Requires(Permission.INTEGRATIONS))


class IntegrationBody(Schema):
    model_config = ConfigDict(extra="forbid")

    provider: Annotated[str, Field(min_length=1, max_length=64)]
    credentials: Annotated[dict[str, Annotated[str, Field(min_length=1, max_length=8192)]], Field(min_length=1)]


class IntegrationOut(Schema):
    provider: str
    fields: list[str]
    updated_at: datetime


@cache
def _providers() -> ProviderRegistry:
    return load_providers()


@router.post(
    "", response={201: IntegrationOut, 401: Error, 422: Error, 503: Error}, summary="Store provider credentials"
)
async def set_integration(request: HttpRequest, body: IntegrationBody) -> Status[dict[str, Any]]:
    """Store the caller's own credentials for a provider (kept in the vault, never shown again)."""
    identity = caller(request)
    registry = _providers()
    if body.provider not in registry.names():
        raise ApiError(422, "provider", f"unknown provider {body.provider!r}; one of: {', '.join(registry.names())}")
    specs = {spec.name: spec for spec in registry.get(body.provider).info.credentials}
    unknown = sorted(set(body.credentials) - set(specs))
    if unknown:
        raise ApiError(
            422, "credentials", f"{body.provider} takes {', '.join(specs) or 'no credentials'}, not {unknown[0]!r}"
        )
    missing = [name for name, spec in specs.items() if spec.required and name not in body.credentials]
    if missing:
        raise ApiError(422, "credentials", f"{body.provider} needs {', '.join(missing)}")
    vault = current().vault
    path = Integration(user_id=identity.user_id, provider=body.provider).secret_path
    try:
        before = await vault.read(path)
        await vault.write(path, dict(body.credentials))
    except VaultUnavailable:
        raise errors.unavailable("the secret store") from None
    try:
        row = await _store_row(identity.user_id, body.provider, sorted(body.credentials))
    except Exception:
        try:
            await (vault.write(path, before) if before is not None else vault.delete(path))
        except VaultUnavailable:  # both stores failed in turn: say so; the operator must reconcile
            log.error("integration %s of user %s: the row was not written and the vault could not be "
                      "put back: its credentials may differ from the row", body.provider, identity.user_id)  # fmt: skip
            raise errors.unavailable("the database") from None
        raise
    await audit.record(request, identity.subject, "integration.set", body.provider)
    return Status(201, _json(row))


@router.get("", response={200: list[IntegrationOut], 401: Error}, summary="Which providers have your credentials")
async def list_integrations(request: HttpRequest) -> list[dict[str, Any]]:
    """Which providers have the caller's credentials, and which credential names."""
    identity = caller(request)
    return [_json(row) async for row in Integration.objects.filter(user_id=identity.user_id).order_by("provider")]


@router.delete(
    "/{provider}", response={204: None, 401: Error, 404: Error, 503: Error}, summary="Remove your credentials"
)
async def delete_integration(request: HttpRequest, provider: str) -> Status[None]:
    """Remove the caller's credentials for a provider."""
    identity = caller(request)
    row = await Integration.objects.filter(user_id=identity.user_id, provider=provider).afirst()
    if row is None:
        raise ApiError(404, "provider", f"no credentials stored for {provider!r}")
    try:  # the secret first: a failure leaves the row, so the delete can be retried
        await current().vault.delete(row.secret_path)
    except VaultUnavailable:
        raise errors.unavailable("the secret store") from None
    await row.adelete()
    await audit.record(request, identity.subject, "integration.delete", provider)
    return Status(204, None)


async def _store_row(user_id: int | None, provider: str, fields: list[str]) -> Integration:
    """Create or update the row; two requests creating it at once both end as an update."""
    try:
        row, _ = await Integration.objects.aupdate_or_create(
            user_id=user_id, provider=provider, defaults={"fields": fields}
        )
    except IntegrityError:  # the other request created it first
        row, _ = await Integration.objects.aupdate_or_create(
            user_id=user_id, provider=provider, defaults={"fields": fields}
        )
    return row


def _json(row: Integration) -> dict[str, Any]:
    return {"provider": row.provider, "fields": row.fields, "updated_at": row.updated_at}
