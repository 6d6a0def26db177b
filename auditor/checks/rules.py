"""What the hooks of the firewall-change checks (security groups, network ACLs) share: is a rule's source the whole
internet, and does a rule's port range cover a sensitive port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.engines.netaddr import parse_network


def world_open(source: str | None) -> bool:
    """0.0.0.0/0 or ::/0. A /0 with host bits (an anonymised log's 208.236.235.254/0) is the whole internet too."""
    net = parse_network(source) if source and not source.startswith(("sg-", "pl-")) else None
    return net is not None and net.prefixlen == 0


def covers_sensitive(rule: Mapping[str, Any], sensitive: set[int]) -> bool:
    """An all-protocol rule covers everything; a TCP or UDP rule without a range covers every port."""
    proto = rule["protocol"]
    if proto == -1:
        return True
    if proto not in (6, 17):
        return False
    lo, hi = rule["from_port"], rule["to_port"]
    if lo is None or hi is None or lo == -1:
        return True  # TCP/UDP without a range means every port
    return any(lo <= p <= hi for p in sensitive)
