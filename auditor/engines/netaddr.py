"""IPv4/IPv6 CIDR matching for DuckDB, without the inet extension (it cannot be downloaded everywhere).

``cidr_contains(cidr, addr)`` mirrors Trino's ``contains(cidr, CAST(addr AS IPADDRESS))``: Trino stores IPv4
addresses as IPv4-mapped IPv6, so ``::ffff:10.0.0.1`` is inside ``10.0.0.0/8`` there, and here too.
Unparsable input gives NULL (Trino would fail the query; a report must not).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
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


def _cidr_contains_arrow(cidrs: pa.Array, addrs: pa.Array) -> pa.Array:
    return pa.array([cidr_contains(c, a) for c, a in zip(cidrs.to_pylist(), addrs.to_pylist())], type=pa.bool_())


# The canonical forms the native path handles: a dotted quad without leading zeros, and such a quad with a
# /0-/32 prefix; an IPv6 address of hexadecimal groups (at most one "::", no embedded dotted quad, no zone),
# and such an address with a /0-/128 prefix. Every other spelling (IPv4-mapped IPv6, spaces, leading zeros, no
# prefix) goes to the Python function, so the two paths can never disagree: the native one only takes inputs
# whose meaning is unambiguous, and computes the same answer (a property test compares them).
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"{_OCTET}(\.{_OCTET}){{3}}"
IPV4_CIDR_PATTERN = rf"{IPV4_PATTERN}/(3[0-2]|[12]?[0-9])"
_GROUP = "[0-9a-fA-F]{1,4}"
IPV6_PATTERN = rf"({_GROUP}(:{_GROUP}){{7}}|({_GROUP}(:{_GROUP}){{0,6}})?::({_GROUP}(:{_GROUP}){{0,6}})?)"
IPV6_CIDR_PATTERN = rf"{IPV6_PATTERN}/(12[0-8]|1[01][0-9]|[1-9]?[0-9])"

# SQL text of fixed macros: no value from config or data is ever pasted in (the patterns are constants of
# this module, and contain no quote).
#
# cidr_contains(c, a) = coalesce((v4(a) >> shift(c)) = key(c), (v6(a) >> shift6(c)) = key6(c), cidr_contains_py(c, a))
#   v4(a)     the address as an integer when it is a canonical IPv4 address, else NULL;
#   shift(c)  32 - prefix length for an IPv4 network (0 for an IPv6 one), NULL when c is no network;
#   key(c)    the network's integer >> shift; -1 (matches no IPv4 address) for an IPv6 network;
#   v6(a)     the address as a 128-bit integer when it is a canonical IPv6 address that is not IPv4-mapped
#             (Trino and the Python function judge those by their IPv4 part), else NULL;
#   shift6(c), key6(c)  the same for IPv6 networks; 127 and 2 (match no IPv6 address) for an IPv4 network.
# A NULL from the native parts (an odd spelling, or no network) falls through to Python, whose answer is the
# definition. Written this way, without a CASE around the whole, DuckDB's common-subexpression pass computes
# v4(a) and v6(a) once per row however many CIDRs a query tests it against (in a projection), v6 is handed NULL
# for the rows that are IPv4, and shift(c), key(c) fold to constants when c is a literal.
#
# The integer of a list of four decimal octet strings. A macro pastes its argument's text wherever the argument
# appears, and DuckDB dedupes repeated expressions only in projections, not in a WHERE: written as
# l[1] << 24 + l[2] << 16 + ..., a CIDR test in a filter (unused_sg_rules' rule matching) ran the address's
# regular expression and split four times per row. Folding the list with lambdas names it once: the rule
# matching's filter went from 3.9 s to 1.8 s on 2.4M rows, and the exposure check's projection got faster too.
_QUAD = "list_reduce(list_transform(l, lambda o: CAST(o AS UBIGINT)), lambda acc, x: acc * 256 + x)"
_PREFIX = "CAST(split_part(c, '/', 2) AS INTEGER)"
_MACROS = (
    f"CREATE OR REPLACE MACRO __auditor_quad(l) AS {_QUAD}",
    f"CREATE OR REPLACE MACRO __auditor_v4(a) AS "
    f"__auditor_quad(string_split(CASE WHEN regexp_full_match(a, '{IPV4_PATTERN}') THEN a END, '.'))",
    f"CREATE OR REPLACE MACRO __auditor_shift(c) AS CASE WHEN regexp_full_match(c, '{IPV4_CIDR_PATTERN}') "
    f"THEN 32 - {_PREFIX} WHEN __auditor_native6(c) THEN 0 ELSE __auditor_net_shift(c) END",
    f"CREATE OR REPLACE MACRO __auditor_key(c) AS CASE WHEN regexp_full_match(c, '{IPV4_CIDR_PATTERN}') "
    f"THEN CAST(__auditor_quad(string_split(split_part(c, '/', 1), '.')) >> (32 - {_PREFIX}) AS BIGINT) "
    "WHEN __auditor_native6(c) THEN -1 ELSE __auditor_net_key(c) END",
    # An IPv6 address as 128-bit integer. "::" becomes the zero groups it stands for (G is how many groups are
    # written; more than seven beside a "::" is no address); each group is then read as hexadecimal. The
    # lambdas bind a value once where a macro would paste its text again, which keeps the plan small.
    "CREATE OR REPLACE MACRO __auditor_g6(t) AS length(t) - length(replace(t, ':', '')) "
    "- CAST(starts_with(t, '::') AS INTEGER) - CAST(ends_with(t, '::') AS INTEGER)",
    "CREATE OR REPLACE MACRO __auditor_full6(t) AS CASE WHEN NOT contains(t, '::') THEN t "
    "WHEN __auditor_g6(t) <= 7 THEN trim(replace(t, '::', ':' || repeat('0:', 8 - __auditor_g6(t))), ':') END",
    "CREATE OR REPLACE MACRO __auditor_u128(t) AS list_reduce(list_transform(string_split(__auditor_full6(t), ':'), "
    "lambda g: CAST('0x' || g AS UHUGEINT)), lambda acc, x: (acc << 16) + x)",
    # IPv4-mapped (::ffff:0:0/96) is NULL: the Python function judges it by its IPv4 address.
    # The CASE keeps the list work to the rows that are IPv6: DuckDB evaluates a THEN only where its WHEN holds.
    f"CREATE OR REPLACE MACRO __auditor_v6(a) AS CASE WHEN regexp_full_match(a, '{IPV6_PATTERN}') THEN "
    "list_transform([__auditor_u128(a)], lambda u: CASE WHEN (u >> 32) <> 65535 THEN u END)[1] END",
    # A canonical IPv6 CIDR that is an IPv6 network: its prefix is under /96 (only a /96 or longer can be an
    # IPv4-mapped network), or its address is not IPv4-mapped. The prefix test spares the address parse.
    f"CREATE OR REPLACE MACRO __auditor_native6(c) AS CASE WHEN NOT regexp_full_match(c, '{IPV6_CIDR_PATTERN}') "
    f"THEN false WHEN {_PREFIX} < 96 THEN true ELSE __auditor_v6(split_part(c, '/', 1)) IS NOT NULL END",
    # DuckDB shifts a UHUGEINT only by a UHUGEINT.
    f"CREATE OR REPLACE MACRO __auditor_shift6(c) AS CAST(CASE WHEN regexp_full_match(c, '{IPV4_CIDR_PATTERN}') THEN 127 "
    f"WHEN __auditor_native6(c) THEN 128 - {_PREFIX} ELSE __auditor_net_shift6(c) END AS UHUGEINT)",
    f"CREATE OR REPLACE MACRO __auditor_key6(c) AS CASE WHEN regexp_full_match(c, '{IPV4_CIDR_PATTERN}') "
    f"THEN CAST(2 AS UHUGEINT) WHEN __auditor_native6(c) "
    f"THEN __auditor_v6(split_part(c, '/', 1)) >> CAST(128 - {_PREFIX} AS UHUGEINT) ELSE CAST(__auditor_net_key6(c) AS UHUGEINT) END",
    "CREATE OR REPLACE MACRO cidr_contains(c, a) AS coalesce((__auditor_v4(a) >> __auditor_shift(c)) = __auditor_key(c), "
    "(__auditor_v6(CASE WHEN __auditor_v4(a) IS NULL THEN a END) >> __auditor_shift6(c)) = __auditor_key6(c), "
    "cidr_contains_py(c, a))",
)


def _of_network(value: Callable[[Network], int]) -> Callable[[str | None], int | None]:
    """``value`` of a CIDR's parsed network; None when the text is no network."""
    def of_text(cidr: str | None) -> int | None:
        net = parse_network(cidr) if cidr is not None else None
        return None if net is None else value(net)
    return of_text


# The per-network values of the macros' comment: shift(c), key(c), shift6(c), key6(c).
_net_shift = _of_network(lambda net: 32 - net.prefixlen if net.version == 4 else 0)
_net_key = _of_network(lambda net: int(net.network_address) >> (32 - net.prefixlen) if net.version == 4 else -1)
_net_shift6 = _of_network(lambda net: 127 if net.version == 4 else 128 - net.prefixlen)
_net_key6 = _of_network(lambda net: 2 if net.version == 4 else int(net.network_address) >> (128 - net.prefixlen))


def _column(value: Callable[[str | None], int | None], type_: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """An Arrow UDF applying ``value`` to each CIDR of a column."""
    def column(cidrs: pa.Array) -> pa.Array:
        return pa.array([value(c) for c in cidrs.to_pylist()], type=type_)
    return column


_shift_arrow = _column(_net_shift, pa.int32())
_key_arrow = _column(_net_key, pa.int64())
_shift6_arrow = _column(_net_shift6, pa.int32())


def _key6_arrow(cidrs: pa.Array) -> pa.Array:
    # Arrow has no 128-bit unsigned integer: the key travels as text and DuckDB casts it back.
    return pa.array([None if (k := _net_key6(c)) is None else str(k) for c in cidrs.to_pylist()], type=pa.string())


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register ``cidr_contains(VARCHAR, VARCHAR) -> BOOLEAN`` on a DuckDB connection.

    It is a macro: canonical IPv4 and IPv6 addresses and CIDRs, nearly every flow record, are tested natively
    and vectorised, as integer prefixes (see ``_MACROS``). A CIDR in another spelling (IPv4-mapped, leading
    zeros) is normalised in Python (DuckDB folds that to a constant when the CIDR is a literal, as in the exposure
    checks), and an address in another spelling goes to :func:`cidr_contains` in Python (``cidr_contains_py``).
    The Python UDF alone cost 9 s per million records in the exposure and unused-rule checks, and about 46 us per
    IPv6 record in the exposure check before IPv6 was native (benchmarks/RESULTS.md); the macro makes CIDR tests
    cost about as much as any other expression.
    """
    assert not any("'" in p for p in (IPV4_CIDR_PATTERN, IPV6_CIDR_PATTERN))
    con.create_function("cidr_contains_py", _cidr_contains_arrow,
                        [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")], duckdb.sqltype("BOOLEAN"),
                        type="arrow", null_handling="special", side_effects=False)
    con.create_function("__auditor_net_shift", _shift_arrow, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("INTEGER"),
                        type="arrow", null_handling="special", side_effects=False)
    con.create_function("__auditor_net_key", _key_arrow, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("BIGINT"),
                        type="arrow", null_handling="special", side_effects=False)
    con.create_function("__auditor_net_shift6", _shift6_arrow, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("INTEGER"),
                        type="arrow", null_handling="special", side_effects=False)
    con.create_function("__auditor_net_key6", _key6_arrow, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                        type="arrow", null_handling="special", side_effects=False)
    for macro in _MACROS:
        con.execute(macro)
