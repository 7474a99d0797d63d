"""Where a request came from: the client's address (believing X-Forwarded-For
only from configured proxies) and user agent."""

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _canonical(address: str) -> str | None:
    """The address in canonical form without an IPv6 zone id (`fe80::1%eth0`): a
    zone only names an interface on the sender's host, and an arbitrary-length one
    would not fit where addresses are stored."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    return str(ip)


def client_ip(conn: HTTPConnection) -> str | None:
    """The TCP peer, or, when the peer is a trusted proxy, the right-most address of
    X-Forwarded-For that is not itself a trusted proxy (the left part is client-set)."""
    peer = conn.client.host if conn.client else None
    proxies = tuple(conn.app.state.settings.trusted_proxies)
    if not proxies or peer is None:
        return peer
    networks = _networks(proxies)
    if not _is_trusted(peer, networks):
        return peer
    forwarded = ",".join(conn.headers.getlist("x-forwarded-for"))
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return _canonical(hop) or peer
    return (_canonical(hops[0]) if hops else None) or peer


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where a request came from, for sessions, throttling and the audit log."""

    ip: str | None
    user_agent: str | None


async def request_origin(conn: HTTPConnection) -> RequestOrigin:
    # async: a plain `def` dependency would run in the thread pool (see app.state).
    return RequestOrigin(ip=client_ip(conn), user_agent=conn.headers.get("user-agent"))


OriginDep = Annotated[RequestOrigin, Depends(request_origin)]
