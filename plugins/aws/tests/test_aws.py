"""AWS plugin: region index -> regional CSV offer files, row filtering, units and the family table."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderBadResponse
from gpubroker.core.gpus import resolve
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_aws.adapter import REGIONS, AwsAdapter, gib, local_storage_gb, region_files
from gpubroker_aws.families import FAMILIES
from gpubroker_aws.pricelist import gpu_rows

CTX = PollContext(AwsAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
VERSION_PATH = "/offers/v1.0/aws/AmazonEC2/20261124183512"


class TestAwsConformance(ProviderConformance):
    adapter = AwsAdapter


def recorded(name: str) -> bytes:
    assert AwsAdapter.recordings is not None
    return AwsAdapter.recordings.joinpath(name).read_bytes()


def record(**overrides: Any) -> dict[str, str]:
    [row] = [r for r in gpu_rows(recorded("us-east-1.csv")) if r["Instance Type"] == "p5.48xlarge"]
    return {**row, **overrides}


async def offers(replay_server) -> dict:  # type: ignore[no-untyped-def]
    return {o.provider_offer_id: o for o in await poll_replay(AwsAdapter, replay_server(AwsAdapter))}


async def test_index_then_one_csv_per_polled_region(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(AwsAdapter)
    found = await poll_replay(AwsAdapter, server)
    paths = [r.path for r in server.requests]
    assert paths[0] == "/offers/v1.0/aws/AmazonEC2/current/region_index.json"
    assert sorted(paths[1:]) == sorted(
        f"{VERSION_PATH}/{r}/index.csv" for r in ("us-east-1", "us-west-2", "eu-central-1")
    )
    assert all("Authorization" not in r.headers for r in server.requests)
    assert len(found) == 21  # decoys: reserved, Windows, RHEL, dedicated, unused reservation, non-GPU, EBS


async def test_only_on_demand_linux_shared_rows(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    p5 = found["us-east-1/p5.48xlarge"]
    assert p5.price_per_hour == Decimal("55.04")  # not the reserved 38.528 nor Windows 56.512
    assert found["us-east-1/g5.xlarge"].price_per_hour == Decimal("1.006")  # not dedicated nor RHEL
    assert "us-east-1/m7i.large" not in found


async def test_recorded_rows_come_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    p5 = found["us-east-1/p5.48xlarge"]
    assert (p5.gpu_type, p5.gpu_count, p5.gpu_memory_gb, p5.price_per_gpu_hour) == ("H100", 8, 80, Decimal("6.88"))
    assert (p5.vcpus, p5.ram_gb, p5.storage_gb, p5.cpu_arch) == (192, 2048, 8 * 3840, "x86_64")
    assert (p5.region, p5.country) == ("us-east-1", "US")
    small = found["us-east-1/p5.4xlarge"]
    assert (small.gpu_count, small.price_per_hour) == (1, Decimal("6.88"))
    assert found["us-east-1/g4ad.xlarge"].gpu_type == "Radeon Pro V520"
    assert found["us-east-1/p3.2xlarge"].storage_gb is None  # EBS only
    assert (found["us-west-2/p4de.24xlarge"].gpu_memory_gb, found["us-west-2/p3dn.24xlarge"].gpu_memory_gb) == (80, 32)
    assert found["eu-central-1/g6e.xlarge"].country == "DE"
    assert found["us-west-2/gr6.4xlarge"].gpu_type == "L4"


async def test_missing_offer_file_is_an_access_error(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(AwsAdapter)
    server.scenario = "unauthorised"  # S3 answers 403 AccessDenied for a key that is not there
    with pytest.raises(ProviderAuthError):
        await poll_replay(AwsAdapter, server)


def test_region_files_follow_the_index_for_polled_regions_only() -> None:
    url = "/offers/v1.0/aws/AmazonEC2/1/{}/index.json"
    codes = ("us-east-1", "af-south-1", "us-gov-west-1")
    index = {"regions": {code: {"regionCode": code, "currentVersionUrl": url.format(code)} for code in codes}}
    calls = region_files(index)
    assert [(c.path, c.tag) for c in calls] == [("/offers/v1.0/aws/AmazonEC2/1/us-east-1/index.csv", "us-east-1")]
    assert "af-south-1" not in REGIONS
    with pytest.raises(ValueError):
        region_files({"regions": {"us-east-1": {"currentVersionUrl": "/elsewhere.txt"}}})


def test_a_body_that_is_not_an_offer_file_is_refused() -> None:
    with pytest.raises(ValueError):
        list(gpu_rows(b'{"not": "csv"}\n'))
    broken = recorded("us-east-1.csv").replace(b'"Region Code"', b'"Somewhere"')
    with pytest.raises(ValueError, match="Region Code"):
        list(gpu_rows(broken))
    response = Response(Call(f"{VERSION_PATH}/us-east-1/index.csv"), 200, {}, b"<html>oops</html>", "aws")
    with pytest.raises(ValueError):
        AwsAdapter().parse(response, CTX)


async def test_a_malformed_index_is_a_bad_response(replay_server) -> None:  # type: ignore[no-untyped-def]
    from gpubroker.core.testkit.replay import Faults

    server = replay_server(AwsAdapter)
    server.faults = Faults(malformed=True)
    with pytest.raises(ProviderBadResponse):
        await poll_replay(AwsAdapter, server)


def test_zero_price_rows_are_not_offers() -> None:
    assert AwsAdapter().normalise(record(PricePerUnit="0.0000000000"), CTX) is None


def test_unknown_families_are_not_offers() -> None:
    assert AwsAdapter().normalise(record(**{"Instance Type": "g6f.large"}), CTX) is None


@given(
    price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=10),
    gpus=st.sampled_from(["1", "4", "8"]),
    memory=st.integers(1, 4096),
)
def test_price_per_unit_is_the_whole_instance(price: Decimal, gpus: str, memory: int) -> None:
    offer = AwsAdapter().normalise(record(PricePerUnit=f"{price:.10f}", GPU=gpus, Memory=f"{memory} GiB"), CTX)
    assert offer is not None
    assert offer.price_per_hour == price.quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_count == int(gpus) and offer.ram_gb == memory


@pytest.mark.parametrize(
    "text, expected",
    [("8 x 3840 SSD", 30720), ("1 x 125 NVMe SSD", 125), ("2 x 1,900 NVMe SSD", 3800), ("EBS only", None)],
)
def test_local_storage(text: str, expected: float | None) -> None:
    assert local_storage_gb(text) == expected


def test_memory_must_be_gib() -> None:
    assert gib("1,152 GiB") == 1152
    with pytest.raises(ValueError):
        gib("NA")


def test_every_family_gpu_resolves_with_its_memory() -> None:
    for name, family in FAMILIES.items():
        match = resolve(family.gpu_name)
        assert match.gpu_type is not None, name
        assert family.gpu_memory_gb in resolve(family.gpu_name).spec.memory_gb, name  # type: ignore[union-attr]


def test_recordings_are_real_csv_offer_files() -> None:
    assert AwsAdapter.recordings is not None
    recordings = Recordings(AwsAdapter.recordings)
    for exchange in recordings.exchanges():
        if exchange.path.endswith(".csv"):
            assert exchange.response.body.startswith(b'"FormatVersion","v1.0"\n')
