"""IPv4/IPv6 CIDR matching for DuckDB, without the inet extension (it cannot be downloaded everywhere).

``cidr_contains(cidr, addr)`` mirrors Trino's ``contains(cidr, CAST(addr AS IPADDRESS))``: Trino stores IPv4
addresses as IPv4-mapped IPv6, so ``::ffff:10.0.0.1`` is inside ``10.0.0.0/8`` there, and here too.
Unparsable input gives NULL (Trino would fail the query; a report must not).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import duckdb
import pyarrow as pa

# The private and special-use ranges that are *not* "public" for the exposure checks. Everything else,
# documentation ranges included, is public.
NON_PUBLIC_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
                    "169.254.0.0/16", "0.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=65536)
def parse_address(text: str) -> Address | None:
    """An address, with IPv4-mapped IPv6 turned into its IPv4 address. None when unparsable."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except (ValueError, AttributeError):
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@lru_cache(maxsize=4096)
def parse_network(text: str) -> Network | None:
    """A CIDR (host bits allowed, as in security-group rules), IPv4-mapped prefixes mapped. None when unparsable."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except (ValueError, AttributeError):
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
        return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}", strict=False)
    return net


def cidr_contains(cidr: str | None, addr: str | None) -> bool | None:
    """Whether ``addr`` lies in ``cidr``; IPv4 never matches an IPv6 network and vice versa."""
    if cidr is None or addr is None:
        return None
    net, ip = parse_network(cidr), parse_address(addr)
    if net is None or ip is None:
        return None
    return ip.version == net.version and ip in net


_NON_PUBLIC = tuple(parse_network(c) for c in NON_PUBLIC_CIDRS)


def is_public(addr: str | None) -> bool | None:
    """Outside every range of NON_PUBLIC_CIDRS. None when unparsable."""
    ip = parse_address(addr) if addr is not None else None
    if ip is None:
        return None
    return not any(ip.version == n.version and ip in n for n in _NON_PUBLIC)


def _cidr_contains_arrow(cidrs: pa.Array, addrs: pa.Array) -> pa.Array:
    return pa.array([cidr_contains(c, a) for c, a in zip(cidrs.to_pylist(), addrs.to_pylist())], type=pa.bool_())


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``cidr_contains(VARCHAR, VARCHAR) -> BOOLEAN`` on a DuckDB connection."""
    con.create_function("cidr_contains", _cidr_contains_arrow, [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("BOOLEAN"), type="arrow", null_handling="special", side_effects=False)
