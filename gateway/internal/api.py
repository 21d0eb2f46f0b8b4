"""The internal API, version 1 (``/internal/v1``). It has its own OpenAPI document and is never
listed in the public one; every route needs ``Access.PLATFORM``."""

from __future__ import annotations

from ninja import NinjaAPI

from gpubroker.gateway import errors
from gpubroker.gateway.identity.access import Access, Requires
from gpubroker.gateway.internal import auth, cache, notifications, providers, rentals, sync, webhooks
from gpubroker.gateway.parser import StrictParser
from gpubroker.gateway.renderer import OrjsonRenderer

internal_api = NinjaAPI(
    title="GPUBROKER internal",
    version="1.0.0",
    description="For the platform's own components; a platform service token is required.",
    urls_namespace="internal-v1",
    parser=StrictParser(),
    renderer=OrjsonRenderer(),
    auth=Requires(Access.PLATFORM),
    docs_url=None,
    openapi_url=None,
)
errors.install(internal_api)
internal_api.add_router("/auth", auth.router)
internal_api.add_router("/providers", providers.router)
internal_api.add_router("/notifications", notifications.router)
internal_api.add_router("/webhooks", webhooks.router)
internal_api.add_router("/cache", cache.router)
internal_api.add_router("/fx", sync.fx_router)
internal_api.add_router("/maintenance", sync.maintenance_router)
internal_api.add_router("/rentals", rentals.router)
