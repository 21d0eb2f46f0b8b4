"""The FX rate table the ``data_sync`` DAG refreshes: stored per day, the newest put to use.

The gateway stores each table it is given (``/internal/v1/fx/rates``) and converts with the
newest from then on (``core.fx.use``); every instance takes the stored table when it starts and
again every ``RELOAD_S``, so a refresh made through one instance reaches all of them. Until a
table is stored, the configured or bundled one is in use, and ``/health`` says which and of
what day.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from gpubroker.core import fx
from gpubroker.core.prices import price_text
from gpubroker.gateway import db

log = logging.getLogger(__name__)

RELOAD_S = 300.0


def store(table: fx.RateTable) -> fx.RateTable:
    """Keep ``table`` (replacing one of the same day) and return the newest stored."""
    from gpubroker.gateway.models import FxRates

    FxRates.objects.update_or_create(
        as_of=table.as_of,
        defaults={
            "source": table.source,
            "usd_per_unit": {code: price_text(rate) for code, rate in sorted(table.usd_per_unit.items())},
            "fetched_at": datetime.now(UTC),
        },
    )
    newest = stored()
    assert newest is not None
    return newest


def stored() -> fx.RateTable | None:
    from gpubroker.gateway.models import FxRates

    row = FxRates.objects.order_by("-as_of").first()
    if row is None:
        return None
    return fx.RateTable.from_mapping({"as_of": row.as_of.isoformat(), "usd_per_unit": row.usd_per_unit}, row.source)


def describe(table: fx.RateTable) -> dict[str, Any]:
    return {"as_of": table.as_of.isoformat(), "source": table.source, "currencies": len(table.usd_per_unit)}


async def use_stored() -> None:
    """Take the newest stored table now and every ``RELOAD_S`` (the runtime runs this)."""
    while True:
        try:
            table = await db.run(stored)
            if table is not None:
                fx.use(table)
        except Exception as exc:
            log.warning("could not read the stored FX rates (%s); converting with %s", exc, fx.rates().source)
        await asyncio.sleep(RELOAD_S)
