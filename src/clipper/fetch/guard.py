"""Where Clipper may connect for a URL source: public addresses over http(s) only.

Refused before any connection: other schemes, credentials in the URL, and hosts resolving to
loopback, private, link-local (where cloud metadata lives), carrier-grade NAT (100.64/10),
multicast, unspecified or reserved addresses, IPv4-mapped IPv6 forms included. When
ALLOWLIST_HOSTS is set, only those hosts are allowed, and they are trusted as configured."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


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
