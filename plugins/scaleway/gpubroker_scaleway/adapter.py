"""Scaleway: GPU Instance types per zone, priced in EUR, with the zone's stock signal.

Two Instance API endpoints describe a zone: ``GET /instance/v1/zones/{zone}/products/servers``
(every commercial type with its hardware and ``hourly_price`` in EUR for the whole instance) and
``GET .../products/servers/availability`` (``available`` / ``scarce`` / ``shortage`` per type).
Both are paged (``per_page`` at most 100, ``total_count`` in the body and ``X-Total-Count``).

An offer needs both answers, and the runtime normalises one record at a time, so the calls of a
zone are chained: the server-type pages are read first, then the availability pages, and the GPU
types collected so far travel in the follow-up call's ``carry`` rather than in shared state.
Records leave ``parse`` only from the last availability page, each carrying its type's hardware,
price and stock word. Facts and sources are in this plugin's README.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

ZONES = ("fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "nl-ams-2", "nl-ams-3", "pl-waw-1", "pl-waw-2")
PER_PAGE = 100
SERVERS_PATH = "/instance/v1/zones/{zone}/products/servers"
AVAILABILITY_SUFFIX = "/availability"
CURRENCY = "EUR"  # the Instance API documents hourly_price as "Hourly price in Euro"
ZONE_COUNTRY = {"fr-par": "FR", "nl-ams": "NL", "pl-waw": "PL"}
_ARCH = {"x86_64": "x86_64", "arm64": "arm64"}

Carried = tuple[tuple[str, Mapping[str, Any]], ...]
"""The GPU server types read so far: ``(commercial type, products/servers entry)``."""
Stock = tuple[tuple[str, str], ...]
"""The stock words read so far: ``(commercial type, availability)``."""


def servers_call(zone: str, page: int = 1, gpu_types: Carried = ()) -> Call:
    """A call of one zone's chain; its ``carry`` holds what earlier pages of that chain returned."""
    carry = {"zone": zone, "page": page, "gpu_types": gpu_types, "availability": ()}
    return Call(SERVERS_PATH.format(zone=zone), params=_paging(page), tag=zone, carry=carry)


def availability_call(zone: str, gpu_types: Carried, page: int = 1, availability: Stock = ()) -> Call:
    path = SERVERS_PATH.format(zone=zone) + AVAILABILITY_SUFFIX
    carry = {"zone": zone, "page": page, "gpu_types": gpu_types, "availability": availability}
    return Call(path, params=_paging(page), tag=zone, carry=carry)


class ScalewayAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="scaleway",
        display_name="Scaleway",
        api_base_url="https://api.scaleway.com",
        homepage="https://www.scaleway.com/en/gpu-instances/",
        credentials=(
            CredentialSpec(
                name="secret_key",
                required=False,
                description="Scaleway API secret key, sent as X-Auth-Token; the product catalogue answers without.",
            ),
        ),
        poll_interval_s=60,
        # One call at a time: a poll's offers then come back in the same order every poll.
        concurrency_limit=1,
        rate_limit_per_minute=120,
        request_timeout_s=10,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [servers_call(zone) for zone in ZONES]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if not credentials.get("secret_key"):
            return call
        return replace(call, headers={**call.headers, "X-Auth-Token": credentials["secret_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        call, chain = response.call, response.call.carry
        if "zone" not in chain:
            raise ValueError(f"{call.path} was not sent as part of a zone chain")
        body = response.json()
        entries = body["servers"]
        if not isinstance(entries, Mapping):
            raise ValueError("'servers' is not a map of commercial types")
        more = _has_more(body, response.headers, chain["page"], len(entries))
        if call.path.endswith(AVAILABILITY_SUFFIX):
            return _read_availability(chain, entries, more)
        found = tuple((name, spec) for name, spec in entries.items() if _gpu_count(spec) >= 1)
        gpu_types = chain["gpu_types"] + found
        if more:
            return Page(follow=[servers_call(chain["zone"], chain["page"] + 1, gpu_types)])
        if not gpu_types:
            return Page()  # a zone without GPU types: its stock does not matter
        return Page(follow=[availability_call(chain["zone"], gpu_types)])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu_count = _gpu_count(record)
        if gpu_count < 1 or record.get("mig_profile"):
            return None  # CPU-only, or a MIG slice of one GPU rather than whole GPUs
        gpu_info = record["gpu_info"]
        zone = str(record["zone"])
        name = str(record["name"])
        return ctx.offer(
            provider_offer_id=f"{zone}/{name}",
            name=name,
            gpu_name=str(gpu_info["gpu_name"]),
            gpu_count=gpu_count,
            gpu_memory_gb=units.bytes_to_gb(gpu_info["gpu_memory"]) if gpu_info.get("gpu_memory") else None,
            price_per_hour=fx.to_usd(units.decimal(record["hourly_price"]), CURRENCY),
            vcpus=record.get("ncpus"),
            ram_gb=units.bytes_to_gb(record["ram"]) if record.get("ram") else None,
            cpu_arch=_ARCH.get(str(record.get("arch"))),
            availability_status=availability_of(record),
            region=zone,
            country=ZONE_COUNTRY.get(zone.rsplit("-", 1)[0]),
        )


def availability_of(record: Mapping[str, Any]) -> Availability:
    """``available`` / ``scarce`` / ``shortage`` as the zone reports them; a type that has reached
    end of service cannot be ordered whatever the stock says."""
    if record.get("end_of_service"):
        return Availability.UNAVAILABLE
    return units.availability(record.get("availability"))


def _read_availability(chain: Mapping[str, Any], entries: Mapping[str, Any], more: bool) -> Page:
    """One availability page of a zone; ``chain`` is what its call carries."""
    zone, gpu_types = chain["zone"], chain["gpu_types"]
    words = chain["availability"] + tuple((name, str(entry["availability"])) for name, entry in entries.items())
    if more:
        return Page(follow=[availability_call(zone, gpu_types, chain["page"] + 1, words)])
    stock = dict(words)
    records = [{**spec, "name": name, "zone": zone, "availability": stock.get(name)} for name, spec in gpu_types]
    return Page(records=records)


def _gpu_count(spec: Mapping[str, Any]) -> int:
    count = spec.get("gpu") or 0
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"gpu count {count!r} is not a whole number")
    return count


def _has_more(body: Mapping[str, Any], headers: Mapping[str, str], page: int, received: int) -> bool:
    """Scaleway pages by ``page``/``per_page``; the total is in the body and in ``X-Total-Count``."""
    total = body.get("total_count")
    if total is None:
        total = next((value for key, value in headers.items() if key.lower() == "x-total-count"), None)
    if total is None:
        return received >= PER_PAGE
    return page * PER_PAGE < int(total)


def _paging(page: int) -> dict[str, str]:
    return {"per_page": str(PER_PAGE), "page": str(page)}
