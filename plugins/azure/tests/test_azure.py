"""Azure plugin: the OData query, NextPageLink paging, spot / low-priority meters, the size table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderHTTPError
from gpubroker.core.gpus import resolve
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_azure.adapter import GPU_FILTER, AzureAdapter, meter_variant
from gpubroker_azure.sizes import GPU_SIZES

CTX = PollContext(AzureAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestAzureConformance(ProviderConformance):
    adapter = AzureAdapter


def meter(**overrides: Any) -> dict[str, Any]:
    base = {
        "currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": 3.673, "unitPrice": 3.673,
        "armRegionName": "eastus", "location": "US East", "effectiveStartDate": "2024-05-01T00:00:00Z",
        "meterId": "00000000-0000-0000-0000-000000000001", "meterName": "NC24ads A100 v4",
        "productId": "DZH318Z08M22", "skuId": "DZH318Z08M22/0001",
        "productName": "Virtual Machines NCads A100 v4 Series",
        "skuName": "NC24ads A100 v4", "serviceName": "Virtual Machines", "serviceId": "DZH313Z7MMC8",
        "serviceFamily": "Compute", "unitOfMeasure": "1 Hour", "type": "Consumption", "isPrimaryMeterRegion": True,
        "armSkuName": "Standard_NC24ads_A100_v4",
    }  # fmt: skip
    return {**base, **overrides}


async def offers(replay_server) -> dict:  # type: ignore[no-untyped-def]
    return {o.provider_offer_id: o for o in await poll_replay(AzureAdapter, replay_server(AzureAdapter))}


async def test_the_query_and_both_pages(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(AzureAdapter)
    found = await poll_replay(AzureAdapter, server)
    first, second = server.requests
    assert first.query == {"api-version": "2023-01-01-preview", "meterRegion": "'primary'", "$filter": GPU_FILTER}
    assert second.query == {**first.query, "$skip": "1000"}
    # three items are not listed: a fractional-GPU size, a retired series and a Low Priority meter
    assert len(found) == 18
    assert {o.region for o in found} == {"eastus", "westeurope", "swedencentral", "southcentralus", "westus"}


async def test_regular_and_spot_meters(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    regular = found["eastus/Standard_NC24ads_A100_v4/regular"]
    spot = found["eastus/Standard_NC24ads_A100_v4/spot"]
    assert (regular.price_per_hour, regular.spot) == (Decimal("3.673"), False)
    assert (spot.price_per_hour, spot.spot, spot.name) == (Decimal("0.7346"), True, "Standard_NC24ads_A100_v4 (Spot)")
    assert (regular.gpu_type, regular.gpu_count, regular.gpu_memory_gb) == ("A100", 1, 80)
    assert (regular.vcpus, regular.ram_gb, regular.country) == (24, 220, "US")


async def test_table_rows_come_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    nd = found["eastus/Standard_ND96isr_H100_v5/regular"]
    assert (nd.gpu_type, nd.gpu_count, nd.price_per_hour, nd.price_per_gpu_hour) == (
        "H100",
        8,
        Decimal("98.32"),
        Decimal("12.29"),
    )
    nvl = found["swedencentral/Standard_NC40ads_H100_v5/regular"]
    assert (nvl.gpu_type, nvl.gpu_memory_gb, nvl.country) == ("H100", 94, "SE")
    assert found["westus/Standard_ND96isr_MI300X_v5/spot"].gpu_vendor == "amd"


async def test_no_credentials_are_sent(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(AzureAdapter)
    await poll_replay(AzureAdapter, server)
    assert all("Authorization" not in r.headers for r in server.requests)


async def test_recorded_bad_request(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(AzureAdapter)
    server.scenario = "bad_request"
    with pytest.raises(ProviderHTTPError):
        await poll_replay(AzureAdapter, server)


async def test_low_priority_meters_are_not_offered_as_spot(replay_server) -> None:  # type: ignore[no-untyped-def]
    # Microsoft retired low-priority VMs (Azure Batch and VM scale sets) on 30 September 2025 in
    # favour of Spot VMs (https://learn.microsoft.com/azure/batch/low-priority-vms-retirement-migration-guide):
    # the Retail Prices API may still list "NC24ads A100 v4 Low Priority" meters, but nobody can
    # rent one, so they are no offer at all, least of all a second spot price.
    found = await offers(replay_server)
    assert not [key for key in found if key.endswith("/low-priority")]
    record = {"armSkuName": "Standard_NC24ads_A100_v4", "type": "Consumption", "unitOfMeasure": "1 Hour",
              "skuName": "NC24ads A100 v4 Low Priority", "armRegionName": "eastus", "retailPrice": 0.3673,
              "currencyCode": "USD"}  # fmt: skip
    assert AzureAdapter().normalise(record, CTX) is None


@pytest.mark.parametrize(
    "sku, expected",
    [("NC24ads A100 v4", ("regular", "")), ("NC24ads A100 v4 Spot", ("spot", "Spot")),
     ("NC24ads A100 v4 Low Priority", ("low-priority", "Low Priority"))],
)  # fmt: skip
def test_meter_variant(sku: str, expected: tuple[str, str]) -> None:
    assert meter_variant(sku) == expected


@pytest.mark.parametrize(
    "overrides",
    [{"armSkuName": "Standard_D4s_v5"}, {"armSkuName": "Standard_NV6ads_A10_v5"}, {"type": "Reservation"},
     {"type": "DevTestConsumption"}],
)  # fmt: skip
def test_non_gpu_fractional_and_non_payg_meters_are_not_offers(overrides: dict[str, Any]) -> None:
    assert AzureAdapter().normalise(meter(**overrides), CTX) is None


@pytest.mark.parametrize("overrides", [{"retailPrice": 0}, {"unitOfMeasure": "1/Month"}, {"currencyCode": "XXX"}])
def test_malformed_meters_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AzureAdapter().normalise(meter(**overrides), CTX)


@given(
    price=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("300"), places=4),
    sku=st.sampled_from(sorted(GPU_SIZES)),
)
def test_retail_price_is_the_whole_vm_price(price: Decimal, sku: str) -> None:
    offer = AzureAdapter().normalise(meter(retailPrice=float(price), armSkuName=sku), CTX)
    assert offer is not None
    assert offer.price_per_hour == price.quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_count == GPU_SIZES[sku].gpu_count


def test_every_table_gpu_resolves_with_its_memory() -> None:
    for sku, size in GPU_SIZES.items():
        match = resolve(size.gpu_name)
        assert match.gpu_type is not None, sku
        assert match.memory_gb in (None, size.gpu_memory_gb), sku


def test_last_page_has_no_follow() -> None:
    body = b'{"BillingCurrency": "USD", "Items": [], "NextPageLink": null, "Count": 0}'
    assert AzureAdapter().parse(Response(Call("/api/retail/prices"), 200, {}, body, "azure"), CTX).follow == []
