"""probing_sources: leave out the sources that were only accepted on allowed_public_ports (count them in the
check's notes instead: scanners touch 443 all day), and say what each remaining source did, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import formatting as fmt
from auditor.checks import HookContext

COLUMNS = ("srcaddr", "rejected_flows", "rejected_ports", "accepted_flows", "accepted_ports", "accepted_interfaces",
           "api_events", "api_failed_events", "api_actors", "first_seen", "last_seen", "severity")


def transform(columns: tuple[str, ...], rows: list[dict[str, Any]],
              ctx: HookContext) -> tuple[tuple[str, ...], list[dict[str, Any]], tuple[str, ...]]:
    kept, knocked = [], 0
    for row in rows:
        if not row.get("accepted_flows") and not row.get("api_events"):
            knocked += 1  # rejected, then accepted only on an allowed public port
            continue
        kept.append({c: row.get(c) for c in COLUMNS})
    notes = ()
    if knocked:
        ports = ", ".join(str(p) for p in ctx.params.get("allowed_public_ports", ()))
        notes = (f"{fmt.count(knocked, 'other source')} rejected in the window {'was' if knocked == 1 else 'were'} "
                 f"also accepted, but only on the allowed public ports ({ports}), and made no API call: not listed",)
    return COLUMNS, kept, notes


def finding_title(row: Mapping[str, Any]) -> str:
    """``198.51.100.7, rejected 412 times on 97 ports, got in on RDP (tcp/3389) to eni-0a1… and made 3 API calls as
    legacy-ops``."""
    parts = [f"{row.get('srcaddr')}, rejected {fmt.count(int(row.get('rejected_flows') or 0), 'time')} on "
             f"{fmt.count(int(row.get('rejected_ports') or 0), 'port')}"]
    accepted = int(row.get("accepted_flows") or 0)
    if accepted:
        ports = [_port_words(p) for p in row.get("accepted_ports") or ()]
        interfaces = row.get("accepted_interfaces") or ()
        parts.append(f"got in on {_first(ports, 3)} to {_first(list(interfaces), 2)} "
                     f"({fmt.count(accepted, 'accepted flow')})")
    calls, failed = int(row.get("api_events") or 0), int(row.get("api_failed_events") or 0)
    if calls:
        actors = [fmt.actor(a) for a in row.get("api_actors") or ()]
        as_whom = f" as {_first(actors, 2)}" if actors else ""
        if failed == calls:
            parts.append(f"tried {fmt.count(calls, 'API call')}{as_whom}, all refused")
        else:
            refused = f" ({failed} refused)" if failed else ""
            parts.append(f"made {fmt.count(calls, 'API call')}{as_whom}{refused}")
    return parts[0] + ", " + " and ".join(parts[1:]) if len(parts) > 1 else parts[0]


def _port_words(label: str) -> str:
    """``tcp/3389`` -> ``RDP (tcp/3389)``."""
    proto, _, port = str(label).partition("/")
    try:
        return fmt.ports({"tcp": 6, "udp": 17}.get(proto), int(port), int(port))
    except ValueError:
        return str(label)


def _first(values: list[str], n: int) -> str:
    if len(values) <= 1:
        return "".join(values)
    if len(values) <= n:
        return ", ".join(values[:-1]) + " and " + values[-1]
    return ", ".join(values[:n]) + f" and {len(values) - n} more"
