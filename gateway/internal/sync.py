"""``/internal/v1/fx`` and ``/internal/v1/maintenance``: what the hourly ``data_sync`` DAG keeps
current: the FX rate table (``fx_tables``) and retention (``retention.prune``, what
``gpubroker prune`` runs)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.core import fx
from gpubroker.gateway import db, fx_tables, retention
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

fx_router = Router(tags=["internal"])
maintenance_router = Router(tags=["internal"])


class RateTableIn(Schema):
    model_config = ConfigDict(extra="forbid")

    as_of: date
    source: Annotated[str, Field(min_length=1, max_length=100, description="Where the rates come from.")]
    usd_per_unit: Annotated[dict[str, Decimal], Field(min_length=1, description="US dollars per unit of each.")]


class RateTableOut(Schema):
    as_of: date
    source: str
    currencies: int
    usd_per_unit: dict[str, str]


def _out(table: fx.RateTable) -> dict[str, Any]:
    return {**fx_tables.describe(table), "usd_per_unit": {k: str(v) for k, v in sorted(table.usd_per_unit.items())}}


@fx_router.put("/rates", response={200: RateTableOut, 401: Error, 403: Error, 422: Error, 503: Error}, summary="Store")
async def put_rates(request: HttpRequest, body: RateTableIn) -> dict[str, Any]:
    """Store a refreshed table; the newest stored is the one converted with from now on."""
    try:
        table = fx.RateTable.from_mapping(
            {"as_of": body.as_of.isoformat(), "usd_per_unit": body.usd_per_unit}, body.source
        )
    except ValueError as exc:
        raise ApiError(422, "usd_per_unit", str(exc)) from None
    newest = await db.run(fx_tables.store, table)
    fx.use(newest)
    return _out(newest)


@fx_router.get("/rates", response={200: RateTableOut, 401: Error, 403: Error}, summary="The table in use")
async def get_rates(request: HttpRequest) -> dict[str, Any]:
    return _out(fx.rates())


class Pruned(Schema):
    removed: dict[str, int] = Field(description="Rows removed, per kind.")
    at: datetime


@maintenance_router.post("/prune", response={200: Pruned, 401: Error, 403: Error, 503: Error}, summary="Retention")
async def prune(request: HttpRequest) -> dict[str, Any]:
    """Delete what is past retention now (as ``gpubroker prune`` does)."""
    now = datetime.now(UTC)
    return {"removed": await db.run(retention.prune, current().settings, now), "at": now}
