"""What the gateway keeps in the database, one module per concern."""

from gpubroker.gateway.models.accounts import ApiKey, RefreshToken, User
from gpubroker.gateway.models.audit import AuditEvent
from gpubroker.gateway.models.catalog import HealthCheck, PriceObservation, ProviderStatus
from gpubroker.gateway.models.deliveries import WebhookAttempt, WebhookDelivery
from gpubroker.gateway.models.features import Favorite, Integration, PriceAlert, Webhook
from gpubroker.gateway.models.orchestration import FxRates, ProviderVerdict
from gpubroker.gateway.models.rentals import Agent, AgentAction, Lease, Rental, RentalBudget, RentalEventRecord

__all__ = [
    "Agent",
    "AgentAction",
    "ApiKey",
    "AuditEvent",
    "Favorite",
    "FxRates",
    "HealthCheck",
    "Integration",
    "Lease",
    "PriceAlert",
    "PriceObservation",
    "ProviderStatus",
    "ProviderVerdict",
    "RefreshToken",
    "Rental",
    "RentalBudget",
    "RentalEventRecord",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
