"""Delivery targets: every spelling of a non-public address is refused, public ones pass."""

from __future__ import annotations

import ipaddress

import pytest

from gpubroker.core import webtargets
from gpubroker.core.webtargets import TargetRefused

PUBLIC_V4 = "93.184.215.14"


async def resolver(host: str, port: int) -> list[str]:
    return {
        "hooks.example.com": [PUBLIC_V4, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "rebound.example.com": ["127.0.0.1"],
        "half.example.com": [PUBLIC_V4, "10.1.2.3"],
    }[host]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://0x7f.1/x",  # hex, shortened
        "http://0x7f000001/x",
        "http://2130706433/x",  # one decimal number
        "http://017700000001/x",  # octal
        "http://0177.0.0.1/x",
        "http://127.1/x",  # shortened
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped
        "http://[::ffff:7f00:1]/x",
        "http://[::127.0.0.1]/x",  # IPv4-compatible
        "http://[2002:7f00:1::]/x",  # 6to4 of 127.0.0.1
        "http://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
        "http://10.0.0.1/x",
        "http://172.16.5.4/x",
        "http://192.168.1.1/x",
        "http://100.64.0.1/x",  # shared address space (carrier-grade NAT)
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[fd00:ec2::254]/x",  # AWS metadata over IPv6
        "http://[fe80::1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "http://198.18.0.1/x",  # benchmarking
        "https://rebound.example.com/x",  # a name for loopback
        "https://half.example.com/x",  # one of its addresses is private
    ],
)
async def test_non_public_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        await webtargets.check(webtargets.parse(url), resolver)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://user:secret@hooks.example.com/x",  # credentials would end up stored and logged
        "https://hooks.example.com@10.0.0.1/x",  # userinfo trick
        "https://hooks.example.com/a b",
        "https://hooks.example.com/x\r\nX-Injected: 1",
        "https://hooks.example.com/\tx",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/x",
        "http://instance-data/latest",
        "http://service.internal/x",
        "https:///nohost",
        "https://hooks.example.com:99999/x",
        "http://[fe80::1%25eth0]/x",
    ],
)
def test_malformed_or_tricky_urls_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(TargetRefused):
        webtargets.parse(url)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/gpu", f"https://{PUBLIC_V4}:8443/gpu", "https://[2606:4700::1111]/x"]
)
async def test_public_targets_pass(url: str) -> None:
    addresses = await webtargets.check(webtargets.parse(url), resolver)
    assert addresses and all(ipaddress.ip_address(a).is_global for a in addresses)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(TargetRefused, match="does not resolve"):
        await webtargets.check(webtargets.parse("https://nowhere.example.com/x"), nothing)


async def test_allowed_networks_open_exactly_themselves() -> None:
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    assert await webtargets.check(webtargets.parse("http://127.0.0.1:9000/x"), resolver, allowed)
    with pytest.raises(TargetRefused):
        await webtargets.check(webtargets.parse("http://10.0.0.1/x"), resolver, allowed)
