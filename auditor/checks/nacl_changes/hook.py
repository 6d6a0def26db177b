"""nacl_changes: replay the window's network ACL calls in time order, so each Delete or Replace can name the entry
it removed, and judge each call.

A call's entry comes from its request (``networkAclId``, ``ruleNumber``, ``egress``, ``ruleAction``,
``aclProtocol``, ``portRange``, ``cidrBlock`` / ``ipv6CidrBlock``):
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateNetworkAclEntry.html. Delete and Replace calls do
not carry the entry they remove (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteNetworkAclEntry.html),
so the previous entry is the one an earlier call of the window set, else the inventory's (describe-network-acls)
when the inventory was captured before the call, else unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from auditor import formatting as fmt
from auditor.checks import HookContext
from auditor.checks.events import request_json, unique_events
from auditor.checks.rules import covers_sensitive, world_open
from auditor.engines.sources.protocols import protocol_number

COLUMNS = ("event_id", "event_time", "event_name", "actor", "source_ip", "network_acl_id", "rule_number", "egress",
           "rule_action", "protocol", "from_port", "to_port", "cidr", "previous_entry", "error_code", "account_id",
           "region", "severity")
ENTRY_FIELDS = ("rule_action", "protocol", "from_port", "to_port", "cidr")
UNKNOWN = "previous entry unknown"
_GONE = object()  # an entry the window's calls deleted: known to be absent


def transform(columns: tuple[str, ...], rows: list[dict[str, Any]], ctx: HookContext) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    sensitive = set(ctx.params.get("sensitive_ports", ()))
    seen: dict[tuple[str, int, bool], Any] = {}  # (acl, rule number, egress) -> the entry the window's calls left
    out = []
    for row in unique_events(rows):
        out.append(_judge(row, seen, ctx, sensitive))
    return COLUMNS, out


def entry_of(req: Mapping[str, Any]) -> dict[str, Any]:
    """The entry a Create/ReplaceNetworkAclEntry request sets. A TCP or UDP entry without a port range covers every
    port; ports do not apply to other protocols."""
    proto = protocol_number(req.get("aclProtocol", req.get("protocol")))
    ports = req.get("portRange") if isinstance(req.get("portRange"), dict) else {}
    lo, hi = _int(ports.get("from")), _int(ports.get("to"))
    if proto not in (6, 17):
        lo = hi = None
    return {"rule_action": (str(req.get("ruleAction") or "").lower() or None), "protocol": proto,
            "from_port": lo, "to_port": hi, "cidr": req.get("cidrBlock") or req.get("ipv6CidrBlock")}


def _judge(row: Mapping[str, Any], seen: dict[tuple[str, int, bool], Any], ctx: HookContext,
           sensitive: set[int]) -> dict[str, Any]:
    name = row.get("event_name") or ""
    req = request_json(row.get("request_parameters"))
    req = req.get(f"{name}Request") or req  # the capitalised wrapper some EC2 events use
    failed = row.get("error_code") is not None
    out = {c: row.get(c) for c in COLUMNS}
    out.update({c: None for c in ("network_acl_id", "rule_number", "egress", "previous_entry", *ENTRY_FIELDS)})
    acl = req.get("networkAclId")
    if name == "CreateNetworkAcl":
        resp = request_json(row.get("response_elements"))
        acl = (resp.get("networkAcl") or {}).get("networkAclId") if isinstance(resp.get("networkAcl"), dict) else None
    out["network_acl_id"] = acl
    severity = "low"
    if name.endswith("NetworkAclEntry"):
        number, egress = _int(req.get("ruleNumber")), _bool(req.get("egress"))
        out.update(rule_number=number, egress=egress)
        key = (acl or "", number if number is not None else -1, bool(egress))
        previous = _previous(key, seen, ctx, row.get("event_time"))
        if name == "DeleteNetworkAclEntry":
            if isinstance(previous, dict):
                out.update(previous)
                out["previous_entry"] = describe(previous, bool(egress))
            else:
                out["previous_entry"] = UNKNOWN
            if not failed:
                seen[key] = _GONE
                if isinstance(previous, dict) and previous.get("rule_action") == "deny":
                    severity = "medium"
        else:
            entry = entry_of(req)
            out.update(entry)
            if name == "ReplaceNetworkAclEntry":
                out["previous_entry"] = describe(previous, bool(egress)) if isinstance(previous, dict) else UNKNOWN
            if not failed:
                seen[key] = entry
                if (not egress and entry["rule_action"] == "allow" and world_open(entry["cidr"])
                        and covers_sensitive(entry, sensitive)):
                    severity = "high"
                elif isinstance(previous, dict) and previous.get("rule_action") == "deny" and name.startswith("Replace"):
                    severity = "medium"
    elif name == "DeleteNetworkAcl" and not failed:
        for key in [k for k in seen if k[0] == acl]:
            seen[key] = _GONE
    out["severity"] = severity  # failed calls are listed, with their error, at low
    return {c: out.get(c) for c in COLUMNS}


def _previous(key: tuple[str, int, bool], seen: Mapping[tuple[str, int, bool], Any], ctx: HookContext,
              event_time: Any) -> Any:
    if key in seen:
        return seen[key]
    captured = ctx.inventory_captured_at
    when = _time(event_time)
    if captured is not None and when is not None and captured <= when:
        return ctx.nacl_entries.get(key)
    return None


def describe(entry: Mapping[str, Any] | None, egress: bool) -> str:
    """``deny SSH (tcp/22) from 203.0.113.9/32``."""
    if not entry:
        return UNKNOWN
    ports = fmt.ports(entry.get("protocol"), entry.get("from_port"), entry.get("to_port"))
    cidr = entry.get("cidr")
    peer = "the internet" if world_open(cidr) else (cidr or "anywhere")
    return f"{entry.get('rule_action') or 'unknown action'} {ports} {'to' if egress else 'from'} {peer}"


def finding_title(row: Mapping[str, Any]) -> str:
    """``rule 90 allows RDP (tcp/3389) from the internet on acl-0a1…, added by dave@example.com (DeveloperRole)``."""
    name = row.get("event_name") or ""
    who = fmt.actor(row.get("actor"))
    acl = row.get("network_acl_id") or "an unknown network ACL"
    code = row.get("error_code")
    refused = f", refused ({code})" if code else ""
    if name in ("CreateNetworkAclEntry", "ReplaceNetworkAclEntry"):
        direction = "outbound" if row.get("egress") else "inbound"
        what = describe(row, bool(row.get("egress")))
        action, _, rest = what.partition(" ")
        verbs = {"allow": "allows", "deny": "denies"}
        if code:
            return f"{who} tried to set {direction} rule {row.get('rule_number')} on {acl} to {what}{refused}"
        done = "added" if name.startswith("Create") else "replaced"
        text = f"{direction} rule {row.get('rule_number')} {verbs.get(action, action)} {rest} on {acl}, {done} by {who}"
        if name.startswith("Replace"):
            previous = row.get("previous_entry") or UNKNOWN
            text += f" ({previous})" if previous == UNKNOWN else f" (it was: {previous})"
        return text[0].upper() + text[1:]
    if name == "DeleteNetworkAclEntry":
        direction = "outbound" if row.get("egress") else "inbound"
        previous = row.get("previous_entry") or UNKNOWN
        which = f"({previous})" if previous == UNKNOWN else f"(it was: {previous})"
        verb = "tried to delete" if code else "deleted"
        return f"{who} {verb} {direction} rule {row.get('rule_number')} on {acl} {which}{refused}"
    verb = {"CreateNetworkAcl": "created the network ACL", "DeleteNetworkAcl": "deleted the network ACL",
            "ReplaceNetworkAclAssociation": "moved a subnet to the network ACL"}.get(name, f"called {name} on")
    if code:
        verb = "tried to " + {"created": "create", "deleted": "delete", "moved": "move"}.get(verb.split()[0], "call") + \
            " " + verb.split(" ", 1)[1]
    return f"{who} {verb} {acl}{refused}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    return str(value).strip().lower() == "true"


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
