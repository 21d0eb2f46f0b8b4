"""A small paginated provider used to test the worker runtime independently of real plugins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import CredentialSpec, ProviderInfo


class PagerAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="pager",
        display_name="Pager Cloud",
        api_base_url="https://api.pager.test",
        credentials=(CredentialSpec(name="token"),),
        poll_interval_s=5,
        concurrency_limit=2,
        request_timeout_s=0.5,
    )
    recordings = files(__package__).joinpath("recordings")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call("/v1/offers", params={"page": "1"})]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        follow = [Call("/v1/offers", params={"page": str(body["next"])})] if body.get("next") else []
        return Page(records=body["data"], follow=follow)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        return ctx.offer(
            provider_offer_id=record["sku"],
            name=record["sku"],
            gpu_name=record["gpu"],
            gpu_count=record["count"],
            price_per_hour=Decimal(str(record["usd_per_hour"])),
            availability_status=Availability.AVAILABLE if record["in_stock"] else Availability.UNAVAILABLE,
            region=record["region"],
        )
