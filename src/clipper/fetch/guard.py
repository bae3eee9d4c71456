"""Where Clipper may connect for a URL source: public addresses over http(s) only.

Refused before any connection: other schemes, credentials in the URL, and hosts resolving to
loopback, private, link-local (where cloud metadata lives), carrier-grade NAT (100.64/10),
multicast, unspecified or reserved addresses, 6to4, IETF protocol assignments (192.0.0.0/24)
and site-local (fec0::/10) ones, IPv4-mapped IPv6 forms included. When ALLOWLIST_HOSTS is set,
only those hosts are allowed, and they are trusted as configured."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")

# Ranges the standard library counts as global that must be refused all the same.
_REFUSED_RANGES = (
    # A 6to4 address embeds an IPv4 address (2002:AABB:CCDD::/48 is A.B.C.D), and a 6to4 relay
    # delivers it there: 2002:7f00:1:: reaches 127.0.0.1, 2002:a9fe:a9fe:: the cloud metadata.
    # The whole range is refused rather than the embedded address checked: 6to4 is deprecated
    # (RFC 7526), so no video host is reachable only through it.
    (ipaddress.ip_network("2002::/16"), "6to4"),
    (ipaddress.ip_network("192.88.99.0/24"), "6to4 relay"),  # the relays' anycast (RFC 7526)
    # Protocol assignments (RFC 6890), e.g. NAT64 discovery and the DS-Lite gateway: not hosts
    # to fetch videos from, and Python counts a few of them (192.0.0.9, .10) as global.
    (ipaddress.ip_network("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    # Deprecated (RFC 3879) but still routed inside some sites, like private addresses.
    (ipaddress.ip_network("fec0::/10"), "site-local"),
)


class ForbiddenUrlError(Exception):
    """The guard refuses to connect for this URL; the message says why."""

    code = "FORBIDDEN_URL"


@dataclass(frozen=True, slots=True)
class Destination:
    """A vetted URL and the address to connect to (pinned: no second DNS answer is used)."""

    url: httpx.URL
    address: Address


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def forbidden_reason(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata lives here)"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "carrier-grade NAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        *((address in network, reason) for network, reason in _REFUSED_RANGES),
        (not address.is_global, "not public"),
    )
    return next((reason for refused, reason in checks if refused), None)


def check_url(
    url: str,
    allowlist: Collection[str] = (),
    resolve: Resolver = system_resolver,
) -> Destination:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ForbiddenUrlError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ForbiddenUrlError("only http and https URLs are fetched")
    if parsed.userinfo:
        raise ForbiddenUrlError("URLs with credentials are not fetched")
    host = parsed.host
    if not host:
        raise ForbiddenUrlError("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    trusted = bool(allowlist)
    if trusted and host not in allowlist:
        raise ForbiddenUrlError(f"{host} is not in ALLOWLIST_HOSTS")
    try:
        answers = [ipaddress.ip_address(answer) for answer in resolve(host, port)]
    except (OSError, ValueError) as exc:
        raise ForbiddenUrlError(f"{host} does not resolve: {exc}") from None
    if not answers:
        raise ForbiddenUrlError(f"{host} does not resolve")
    if not trusted:
        for address in answers:  # every answer: a rebinding host may mix good and bad ones
            if reason := forbidden_reason(address):
                raise ForbiddenUrlError(f"{host} resolves to a {reason} address")
    return Destination(parsed, answers[0])
