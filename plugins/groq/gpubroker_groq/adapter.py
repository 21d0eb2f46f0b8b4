"""Groq: the models GroqCloud serves on its LPUs (``GET /openai/v1/models``).

Groq rents no hardware. It is an inference API: models run on Groq's own accelerator, the LPU
(Language Processing Unit, first generation "GroqChip"), and are billed per token. The only
machine-readable view of its capacity is the OpenAI-compatible model list, which answers
``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by", "active"}]}``.
So an "offer" here is one model endpoint served on Groq LPUs: one LPU-backed endpoint per model
(``gpu_count`` 1), available while ``active`` is true, with no hourly price because Groq publishes
none. Facts and sources are in the README beside this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/openai/v1/models"
GPU_NAME = "Groq LPU"  # the catalogue's "LPU" family (vendor groq); its memory is on-chip SRAM
REGION = "unknown"  # a model record names no region or data centre


class GroqAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="groq",
        display_name="Groq",
        api_base_url="https://api.groq.com",
        homepage="https://groq.com",
        credentials=(
            CredentialSpec(name="api_key", description="GroqCloud API key (gsk_...), sent as a bearer token."),
        ),
        # The model list changes when Groq adds, deprecates or pauses a model: minutes, not seconds.
        poll_interval_s=300,
        concurrency_limit=1,
        # Groq documents per-model chat limits (30 RPM on the free plan) but none for /models;
        # one call per poll stays far below either.
        rate_limit_per_minute=30,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        data = response.json()["data"]
        if not isinstance(data, list):
            raise ValueError("'data' is not a list")
        return Page(records=data)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        model = model_id(record)
        return ctx.offer(
            provider_offer_id=model,
            name=f"{model} on Groq LPUs",
            gpu_name=GPU_NAME,
            gpu_count=1,  # one LPU-backed model endpoint; Groq does not say how many chips serve it
            price_per_hour=None,  # Groq bills per token and publishes no hourly price
            availability_status=availability(record),
            region=REGION,
        )


def model_id(record: Mapping[str, Any]) -> str:
    """The record's model id, refusing anything that is not a model object with a usable id."""
    if record["object"] != "model":
        raise ValueError(f"not a model object: {record['object']!r}")
    model = record["id"]
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"unusable model id {model!r}")
    return model


def availability(record: Mapping[str, Any]) -> Availability:
    """``active`` true -> available, false -> unavailable; anything but a boolean is malformed."""
    active = record["active"]
    if not isinstance(active, bool):
        raise ValueError(f"{record.get('id')!r}: 'active' is not a boolean: {active!r}")
    return units.availability(active)
