"""Where the product may send an HTTP request on a user's behalf (webhooks): public addresses only.

A target is parsed strictly and every address its host stands for must be public, checked when
the target is registered and again right before each delivery (a name may be re-pointed at an
internal address after it was registered: DNS rebinding). Refused:

- anything but ``http``/``https``, credentials in the URL (``user:pass@``), a port out of range,
  whitespace or control characters anywhere (a CR/LF could split a request line);
- IPv4 written in any legacy form the C resolver accepts (``0x7f.1``, ``2130706433``,
  ``017700000001``, ``127.1``), IPv6 that embeds IPv4 (mapped, compatible, 6to4, Teredo, NAT64)
  where the embedded address is not public;
- every address that is not globally routable (private, loopback, link-local, shared address
  space 100.64/10, benchmarking, documentation, multicast, reserved, unspecified);
- cloud metadata services by name (``metadata.google.internal``, ...) as well as by address.

``allowed`` networks (a setting, for tests and private deployments) are accepted despite being
non-public; nothing else is.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.platformequinix.com",
        "metadata.tencentyun.com",
        "100-100-100-200",
    }
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL = 2000


class TargetRefused(ValueError):
    """The URL may not be a delivery target; the message says why, naming no secret."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    """Lower-case host name, or the address for a literal."""
    port: int


def parse(url: str) -> Target:
    """The target ``url`` names, or ``TargetRefused``: the checks that need no network."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"the URL is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused("the URL holds whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"the URL is malformed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("must be an http(s) URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("must not carry credentials (user:password@); put them in the path or use the signature")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("must name a host")
    if "%" in host:
        raise TargetRefused("must not carry an IPv6 zone or percent-encoded host")
    literal = literal_address(host)
    if literal is not None:
        host = str(literal)
    elif host.lower() in METADATA_NAMES or host.lower().endswith(".internal"):
        raise TargetRefused("must not point at a cloud metadata or internal name")
    return Target(url, parts.scheme, host.lower(), port or (443 if parts.scheme == "https" else 80))


def literal_address(host: str) -> Address | None:
    """``host`` as an address if it is one in any spelling the system would accept, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # legacy IPv4 forms: hex, octal, decimal, shortened (what inet_aton takes)
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refusal(address: Address, allowed: Iterable[Network] = ()) -> str | None:
    """Why ``address`` may not be delivered to, or None when it may."""
    if any(address in network for network in allowed):
        return None
    embedded = _embedded_ipv4(address)
    if embedded is not None and not embedded.is_global:
        return f"{address} embeds the non-public address {embedded}"
    if not address.is_global or address.is_multicast:
        return f"{address} is not a public address"
    return None


async def check(target: Target, resolve: Resolver, allowed: Iterable[Network] = ()) -> list[str]:
    """Every address ``target`` stands for now, all of them public; ``TargetRefused`` otherwise."""
    allowed = list(allowed)
    literal = literal_address(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolve(target.host, target.port)
        except OSError as exc:
            raise TargetRefused(f"{target.host} does not resolve ({exc.strerror or exc})") from None
        if not addresses:
            raise TargetRefused(f"{target.host} does not resolve")
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%")[0]), allowed)
        if reason is not None:
            raise TargetRefused(f"{target.host} resolves to a non-public address ({reason})")
    return addresses


async def system_resolver(host: str, port: int) -> list[str]:
    """The machine's resolver, off the event loop."""
    import asyncio

    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:  # IPv4-compatible (deprecated) ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None
