"""What the gateway keeps in the database, one module per concern."""

from gpubroker.gateway.models.accounts import ApiKey, RefreshToken, User
from gpubroker.gateway.models.audit import AuditEvent
from gpubroker.gateway.models.catalog import HealthCheck, PriceObservation, ProviderStatus
from gpubroker.gateway.models.deliveries import WebhookAttempt, WebhookDelivery
from gpubroker.gateway.models.features import Favorite, Integration, PriceAlert, Webhook
from gpubroker.gateway.models.orchestration import FxRates, ProviderVerdict

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Favorite",
    "FxRates",
    "HealthCheck",
    "Integration",
    "PriceAlert",
    "PriceObservation",
    "ProviderStatus",
    "ProviderVerdict",
    "RefreshToken",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
