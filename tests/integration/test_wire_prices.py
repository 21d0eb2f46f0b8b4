"""Prices read back from the real Kafka topics after a worker process published a replayed
provider whose prices are round values: the wire form has no exponent (``20``, never ``2E+1``)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from gpubroker.core import events
from gpubroker.core.plugins import load_providers
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.integration.kafka_reading import end_offsets, read_since
from tests.integration.processes import production_env, run_worker, seed_credentials

pytestmark = pytest.mark.integration

WIRE = re.compile(r"^\d+(\.\d+)?$")
# Round and plausible (the price sanity guard holds back what is not): cents for $1, $2, $20 ...
FIRST = {"gpu_1x_a10": 100, "gpu_1x_a6000": 200, "gpu_8x_h100_sxm5": 2000}
SECOND = {"gpu_1x_a10": 250, "gpu_1x_a6000": 100, "gpu_8x_h100_sxm5": 3000}  # ... and $2.5, $1, $30


def recordings_priced(source: Path, target: Path, cents: dict[str, int]) -> Path:
    """Lambda's recorded instance types with the given hourly prices (in its own unit, cents)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    payload = json.loads((target / "instance_types.json").read_text())
    for name, price in cents.items():
        payload["data"][name]["instance_type"]["price_cents_per_hour"] = price
    (target / "instance_types.json").write_text(json.dumps(payload))
    return target


async def test_round_prices_go_out_as_plain_decimals(services: Services, tmp_path: Path) -> None:
    provider = load_providers(allow=["lambdalabs"]).get("lambdalabs")
    source = Path(str(provider.adapter.recordings))
    assert set(FIRST) <= set(json.loads((source / "instance_types.json").read_text())["data"])
    env = production_env(services, tmp_path / "data")
    seed_credentials(services, provider)
    starts = {
        topic: await end_offsets(services.kafka_bootstrap, topic) for topic in (events.OFFERS, events.PRICE_UPDATES)
    }
    for cents in (FIRST, SECOND):  # the second poll moves every price: price updates follow
        with ReplayServer(recordings_priced(source, tmp_path / "recordings", cents)) as replay:
            result = await asyncio.to_thread(run_worker, env, "lambdalabs", replay)
            assert result.returncode == 0, result.stderr

    offers = [v for _, v in await read_since(services.kafka_bootstrap, starts[events.OFFERS])]
    assert offers
    for value in offers:
        text = value.decode()
        price = re.search(r'"price_per_hour":([^,}]+)', text)
        assert price is not None and WIRE.match(price.group(1)), text
    prices = {events.decode_offer(value).price_per_hour for value in offers}
    assert {Decimal(1), Decimal(2), Decimal(20), Decimal("2.5"), Decimal(30)} <= prices

    updates = [orjson.loads(v) for _, v in await read_since(services.kafka_bootstrap, starts[events.PRICE_UPDATES])]
    wire = {(u["old_price"], u["new_price"]) for u in updates if u["provider"] == "lambdalabs"}
    assert {("1", "2.5"), ("2", "1"), ("20", "30")} <= wire
