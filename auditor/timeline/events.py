"""CloudTrail security-group events as the changes they made: rules added or removed (with their content where the
event carries it), rules modified, groups created or deleted, an interface's group set replaced.

Request and response shapes:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AuthorizeSecurityGroupIngress.html (the response's
``securityGroupRuleSet`` names the rules it created, with their IDs),
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RevokeSecurityGroupIngress.html (by permissions or by
``securityGroupRuleIds``), https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySecurityGroupRules.html
(the new rule only: the old one is not in the event),
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html (the new
``groupSet`` only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from auditor.checks.events import items, request_json, unique_events
from auditor.engines.sources.protocols import protocol_number

_ADD = {"AuthorizeSecurityGroupIngress": False, "AuthorizeSecurityGroupEgress": True}
_REMOVE = {"RevokeSecurityGroupIngress": False, "RevokeSecurityGroupEgress": True}
GROUP_SET = ("ModifyNetworkInterfaceAttribute",)


@dataclass(frozen=True)
class Rule:
    """One security-group rule with one peer, as the inventory's ``sg_rules`` holds it."""

    group_id: str
    is_egress: bool
    protocol: int | None
    from_port: int | None
    to_port: int | None
    cidr_ipv4: str | None = None
    cidr_ipv6: str | None = None
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None
    rule_id: str | None = None

    @property
    def content(self) -> tuple[Any, ...]:
        """What a rule is, whatever its ID: how a Revoke by permissions finds the rule it removes."""
        return (self.group_id, self.is_egress, self.protocol, self.from_port, self.to_port, self.cidr_ipv4,
                self.cidr_ipv6, self.prefix_list_id, self.referenced_group_id)


@dataclass(frozen=True)
class SgEvent:
    """One successful security-group API call, as the changes it made."""

    event_id: str | None
    time: datetime
    name: str
    actor: str | None
    source_ip: str | None
    group_id: str | None = None
    added: tuple[Rule, ...] = ()
    removed: tuple[Rule, ...] = ()  # removed by their content
    removed_ids: tuple[str, ...] = ()  # removed by rule ID, content not in the event
    modified: tuple[Rule, ...] = ()  # the new content of rules changed in place (rule_id set)
    interface_id: str | None = None
    group_set: tuple[str, ...] = ()


def parse_events(rows: Iterable[Mapping[str, Any]], rule_egress: Mapping[str, bool]) -> tuple[list[SgEvent], int]:
    """The successful, distinct events among ``rows`` (the sg_changes query's columns), in time order, and how
    many rows were left out because they failed or could not be read. ``rule_egress`` (rule ID -> egress) gives
    the direction of a modified rule, which its event does not carry."""
    out: list[SgEvent] = []
    skipped = 0
    for row in unique_events(rows):
        if row.get("error_code") is not None:
            continue  # a refused call changed nothing
        try:
            time = instant(row.get("event_time"))
        except ValueError:
            skipped += 1
            continue
        event = _event(row, time, rule_egress)
        if event is not None:
            out.append(event)
    out.sort(key=lambda e: (e.time, e.event_id or ""))
    return out, skipped


def _event(row: Mapping[str, Any], time: datetime, rule_egress: Mapping[str, bool]) -> SgEvent | None:
    name = str(row.get("event_name"))
    req, resp = request_json(row.get("request_parameters")), request_json(row.get("response_elements"))
    base = {"event_id": row.get("event_id"), "time": time, "name": name, "actor": row.get("actor"),
            "source_ip": row.get("source_ip")}
    if name in _ADD:
        group = req.get("groupId")
        created = [_response_rule(r) for r in items(resp.get("securityGroupRuleSet")) if isinstance(r, dict)]
        added = [r for r in created if r is not None] or _permission_rules(group, _ADD[name], req)
        return SgEvent(**base, group_id=group, added=tuple(added))
    if name in _REMOVE:
        group = req.get("groupId")
        ids = [i.get("securityGroupRuleId") if isinstance(i, dict) else i
               for i in items(req.get("securityGroupRuleIds"))]
        return SgEvent(**base, group_id=group, removed=tuple(_permission_rules(group, _REMOVE[name], req)),
                       removed_ids=tuple(str(i) for i in ids if i))
    if name == "ModifySecurityGroupRules":
        inner = req.get("ModifySecurityGroupRulesRequest") or req
        group = inner.get("GroupId")
        modified = []
        for entry in items(inner.get("SecurityGroupRule")):
            if not isinstance(entry, dict) or not entry.get("SecurityGroupRuleId"):
                continue
            rid = str(entry["SecurityGroupRuleId"])
            spec = entry.get("SecurityGroupRule") or {}
            modified.append(_rule(group, rule_egress.get(rid, False), spec.get("IpProtocol"), spec.get("FromPort"),
                                  spec.get("ToPort"), rule_id=rid, cidr_ipv4=spec.get("CidrIpv4"),
                                  cidr_ipv6=spec.get("CidrIpv6"), prefix_list_id=spec.get("PrefixListId"),
                                  referenced_group_id=spec.get("ReferencedGroupId")))
        return SgEvent(**base, group_id=group, modified=tuple(modified))
    if name == "CreateSecurityGroup":
        return SgEvent(**base, group_id=resp.get("groupId"))
    if name == "DeleteSecurityGroup":
        return SgEvent(**base, group_id=req.get("groupId"))
    if name in GROUP_SET and req.get("networkInterfaceId"):
        groups = [g.get("groupId") for g in items(req.get("groupSet")) if isinstance(g, dict)]
        return SgEvent(**base, interface_id=req["networkInterfaceId"], group_set=tuple(g for g in groups if g))
    return None  # descriptions, instance attributes: no change of what is admitted, or none we can place


def instant(value: Any) -> datetime:
    """A CloudTrail ``eventTime`` (ISO 8601, UTC) or a timestamp as an aware UTC datetime. Raises ValueError."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc) if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _port(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rule(group: Any, egress: bool, protocol: Any, lo: Any, hi: Any, **peer: Any) -> Rule:
    proto = protocol_number(protocol) if protocol is not None else None
    lo_i, hi_i = _port(lo), _port(hi)
    if proto == -1 or (lo_i is None and hi_i is None):
        lo_i = hi_i = -1  # the inventory's -1: every port (all protocols, or a rule without ports)
    return Rule(group_id=str(group), is_egress=egress, protocol=proto, from_port=lo_i, to_port=hi_i,
                **{k: (str(v) if v else None) for k, v in peer.items()})


def _response_rule(item: Mapping[str, Any]) -> Rule | None:
    if not item.get("groupId"):
        return None
    return _rule(item["groupId"], bool(item.get("isEgress")), item.get("ipProtocol"), item.get("fromPort"),
                 item.get("toPort"), rule_id=item.get("securityGroupRuleId"), cidr_ipv4=item.get("cidrIpv4"),
                 cidr_ipv6=item.get("cidrIpv6"), prefix_list_id=item.get("prefixListId"),
                 referenced_group_id=(item.get("referencedGroupInfo") or {}).get("groupId"))


def _permission_rules(group: Any, egress: bool, req: Mapping[str, Any]) -> list[Rule]:
    """One rule per peer of the request's permissions (modern ``ipPermissions`` or the legacy flat shape)."""
    out = []
    for p in items(req.get("ipPermissions")):
        if not isinstance(p, dict):
            continue
        args = (group, egress, p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"))
        out += [_rule(*args, cidr_ipv4=r.get("cidrIp")) for r in items(p.get("ipRanges")) if isinstance(r, dict)]
        out += [_rule(*args, cidr_ipv6=r.get("cidrIpv6")) for r in items(p.get("ipv6Ranges")) if isinstance(r, dict)]
        out += [_rule(*args, prefix_list_id=r.get("prefixListId")) for r in items(p.get("prefixListIds"))
                if isinstance(r, dict)]
        out += [_rule(*args, referenced_group_id=g.get("groupId")) for g in items(p.get("groups"))
                if isinstance(g, dict) and g.get("groupId")]
    if req.get("cidrIp"):  # the legacy flat shape
        out.append(_rule(group, egress, req.get("ipProtocol", "-1"), req.get("fromPort"), req.get("toPort"),
                         cidr_ipv4=req.get("cidrIp")))
    return out
