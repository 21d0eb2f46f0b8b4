"""Verda (formerly DataCrunch): instance types, their on-demand and spot prices, and where each
can be deployed now.

The API takes an OAuth2 client-credentials bearer token. One poll is a chain of five calls, each
started by the parse of the one before: ``POST /v1/oauth2/token`` (the client id and secret in a
JSON body; the answer's ``access_token`` goes on every later call), ``GET /v1/locations``
(location codes and their ISO country), ``GET /v1/instance-availability?is_spot=false`` and
``?is_spot=true`` (per location, the instance types that can be deployed now) and
``GET /v1/instance-types?currency=usd`` (hardware and the whole instance's ``price_per_hour`` and
``spot_price``, in the ``currency`` the answer states). Each call carries what the earlier ones
said (``Call.carry``), and the last one joins them: one offer per (instance type, location,
on-demand or spot). Facts and sources are in README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

TOKEN_PATH = "/v1/oauth2/token"
LOCATIONS_PATH = "/v1/locations"
AVAILABILITY_PATH = "/v1/instance-availability"
INSTANCE_TYPES_PATH = "/v1/instance-types"
CURRENCY = "usd"
_COUNT_PREFIX = re.compile(r"^\s*\d+\s*x\s+", re.IGNORECASE)  # "8x H100 SXM5 80GB" -> "H100 SXM5 80GB"


class VerdaAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="datacrunch",
        display_name="Verda (DataCrunch)",
        api_base_url="https://api.verda.com",
        homepage="https://verda.com",
        credentials=(
            CredentialSpec(name="client_id", description="Verda Cloud API client ID (OAuth2 client credentials)."),
            CredentialSpec(name="client_secret", description="Verda Cloud API client secret."),
        ),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=10,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(TOKEN_PATH, method="POST", json={"grant_type": "client_credentials"}, tag="token")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        # Only the token request carries the client credentials; every later call carries the
        # bearer token that parse put on it.
        if call.path != TOKEN_PATH or "client_id" not in credentials or "client_secret" not in credentials:
            return call
        body = {**call.json, "client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}
        return replace(call, json=body)

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        call, state = response.call, dict(response.call.carry)
        if call.path == TOKEN_PATH:
            bearer = {"Authorization": f"Bearer {body['access_token']}"}
            return Page(follow=[Call(LOCATIONS_PATH, headers=bearer, tag="locations")])
        bearer = {"Authorization": call.headers["Authorization"]}
        if call.path == LOCATIONS_PATH:
            state["countries"] = {str(loc["code"]): loc.get("country_code") for loc in body}
            return Page(follow=[_availability(bearer, state, spot=False)])
        if call.path == AVAILABILITY_PATH:
            mode = "spot" if call.params.get("is_spot") == "true" else "on_demand"
            state[mode] = {str(loc["location_code"]): list(loc.get("availabilities") or []) for loc in body}
            if mode == "on_demand":
                return Page(follow=[_availability(bearer, state, spot=True)])
            instance_types = Call(
                INSTANCE_TYPES_PATH, params={"currency": CURRENCY}, headers=bearer, tag="instance-types", carry=state
            )
            return Page(follow=[instance_types])
        if call.path == INSTANCE_TYPES_PATH:
            return Page(records=list(_offer_records(body, state)))
        raise ValueError(f"no reader for {call.path}")

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        kind, mode = record["instance_type"], record["mode"]
        gpus = int(kind["gpu"]["number_of_gpus"])
        if gpus < 1:
            return None  # CPU-only instance types
        currency = str(kind.get("currency") or CURRENCY)
        on_demand = fx.to_usd(units.decimal(kind["price_per_hour"]), currency)
        spot_price = _positive(kind.get("spot_price"), currency)
        spot = mode == "spot"
        if spot and spot_price is None:
            return None
        location = str(record["location"])
        gpu_name = gpu_model(str(kind["gpu"]["description"]))
        return ctx.offer(
            provider_offer_id=f"{kind['instance_type']}/{location}/{mode}",
            name=str(kind["instance_type"]),
            gpu_name=gpu_name,
            gpu_count=gpus,
            gpu_memory_gb=_per_gpu(kind.get("gpu_memory"), gpus),
            price_per_hour=spot_price if spot else on_demand,
            spot_price=spot_price,
            spot=spot,
            vcpus=_size(kind.get("cpu"), "number_of_cores"),
            ram_gb=_size(kind.get("memory"), "size_in_gigabytes"),
            storage_gb=_size(kind.get("storage"), "size_in_gigabytes"),
            availability_status=units.availability(bool(record["available"])),
            region=location,
            country=_country(record.get("country")),
        )


def _availability(bearer: Mapping[str, str], state: Mapping[str, Any], *, spot: bool) -> Call:
    params = {"is_spot": "true" if spot else "false"}
    return Call(AVAILABILITY_PATH, params=params, headers=bearer, tag="availability", carry=state)


def _offer_records(instance_types: object, state: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """One record per (instance type, location, on-demand or spot)."""
    if not isinstance(instance_types, list):
        raise ValueError("the instance types answer is not a JSON array")
    countries = state["countries"]
    for kind in instance_types:
        for location, country in countries.items():
            for mode in ("on_demand", "spot"):
                available = kind["instance_type"] in state[mode].get(location, ())
                yield {
                    "instance_type": kind,
                    "location": location,
                    "country": country,
                    "mode": mode,
                    "available": available,
                }


def gpu_model(description: str) -> str:
    """The GPU in Verda's description, without the count: ``1x H100 SXM5 80GB`` -> ``H100 SXM5 80GB``."""
    return _COUNT_PREFIX.sub("", description).strip()


def _positive(value: object, currency: str) -> Decimal | None:
    if value is None or value == "":
        return None
    amount = units.decimal(value)
    return fx.to_usd(amount, currency) if amount > 0 else None


def _per_gpu(memory: object, gpus: int) -> float | None:
    if not isinstance(memory, Mapping) or not memory.get("size_in_gigabytes"):
        return None
    return round(float(memory["size_in_gigabytes"]) / gpus, 1)


def _size(part: object, key: str) -> float | None:
    if not isinstance(part, Mapping) or not part.get(key):
        return None
    return float(part[key])


def _country(code: object) -> str | None:
    text = str(code or "").strip().upper()
    return text if len(text) == 2 and text.isalpha() else None
