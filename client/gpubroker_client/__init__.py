"""A typed Python client of the GPUBROKER API.

``Client`` and ``AsyncClient`` read offers (one page, or every page by cursor), the TOPSIS ranking
and decision, the GPU catalogue and price history; ``AsyncClient.stream`` follows the live changes
over Server-Sent Events and resumes after a dropped connection. Both retry a 429 or 503 as
``Retry-After`` asks.
"""

from gpubroker_client.aio import AsyncClient
from gpubroker_client.errors import (
    ApiError,
    Forbidden,
    GpubrokerError,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unreachable,
)
from gpubroker_client.models import (
    Decision,
    Gpu,
    GpuCatalogue,
    Offer,
    OfferPage,
    Pick,
    PriceHistory,
    PricePoint,
    PriceSeries,
    ProviderFreshness,
    RankedOffer,
    RankingPage,
    StreamEvent,
)
from gpubroker_client.requests import DEFAULT_URL, RetryPolicy
from gpubroker_client.sync import Client

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "Client",
    "Decision",
    "Forbidden",
    "Gpu",
    "GpuCatalogue",
    "GpubrokerError",
    "InvalidRequest",
    "NotFound",
    "Offer",
    "OfferPage",
    "Pick",
    "PriceHistory",
    "PricePoint",
    "PriceSeries",
    "ProviderFreshness",
    "RankedOffer",
    "RankingPage",
    "RateLimited",
    "RetryPolicy",
    "StreamEvent",
    "Unauthorized",
    "Unavailable",
    "Unreachable",
]
