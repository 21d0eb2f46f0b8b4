"""The API operations the clients call, each with the model its answer is: one table for the sync
and the async client, and what the test against the gateway's OpenAPI document walks."""

from __future__ import annotations

from dataclasses import dataclass

from gpubroker_client.models import Decision, GpuCatalogue, Offer, OfferPage, PriceHistory, RankingPage

API = "/api/v2"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """Under ``/api/v2``; ``{offer_id}`` is filled in."""
    answer: type
    body: bool = False
    """Filters go as a JSON body rather than query parameters."""


OFFERS = Endpoint("GET", "/providers", OfferPage)
OFFER = Endpoint("GET", "/providers/{offer_id}", Offer)
QUERY = Endpoint("POST", "/providers/query", OfferPage, body=True)
RANKING = Endpoint("GET", "/providers/ranking", RankingPage)
DECIDE = Endpoint("POST", "/providers/decide", Decision, body=True)
GPUS = Endpoint("GET", "/gpus", GpuCatalogue)
PRICE_HISTORY = Endpoint("GET", "/analytics/price-history", PriceHistory)
STREAM = "/providers/stream"

ENDPOINTS = (OFFERS, OFFER, QUERY, RANKING, DECIDE, GPUS, PRICE_HISTORY)
