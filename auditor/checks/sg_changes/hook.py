"""sg_changes: turn each CloudTrail request into the rules it carried, and judge them.

SQL selects the events; the two request shapes of Authorize* (modern ``ipPermissions.items[]`` and the legacy
flat ``cidrIp/fromPort/toPort``) and ModifySecurityGroupRules' capitalised nested request are easier to read
here than in two SQL dialects. Request shapes:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AuthorizeSecurityGroupIngress.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySecurityGroupRules.html.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditor import formatting as fmt
from auditor.checks import HookContext
from auditor.checks.events import items, request_json, unique_events
from auditor.checks.rules import covers_sensitive, world_open
from auditor.engines.sources.protocols import protocol_number

COLUMNS = ("event_id", "event_time", "event_name", "actor", "source_ip", "error_code", "group_id", "rules",
           "summary", "user_agent", "account_id", "region", "public_sources_after", "public_flows_after", "open_until",
           "actor_ip_seen_after", "severity")

_OPENING = {"AuthorizeSecurityGroupIngress": "ingress", "AuthorizeSecurityGroupEgress": "egress",
            "ModifySecurityGroupRules": None}  # direction of the rules an event adds; None: look it up per rule
_DIRECTION = {"AuthorizeSecurityGroupIngress": "ingress", "RevokeSecurityGroupIngress": "ingress",
              "UpdateSecurityGroupRuleDescriptionsIngress": "ingress", "AuthorizeSecurityGroupEgress": "egress",
              "RevokeSecurityGroupEgress": "egress", "UpdateSecurityGroupRuleDescriptionsEgress": "egress"}


def transform(columns: tuple[str, ...], rows: list[dict[str, Any]], ctx: HookContext) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    sensitive = set(ctx.params.get("sensitive_ports", ()))
    return COLUMNS, [_judge(row, sensitive, ctx.rule_egress) for row in unique_events(rows)]


def _judge(row: Mapping[str, Any], sensitive: set[int], rule_egress: Mapping[str, bool]) -> dict[str, Any]:
    name = row["event_name"]
    req = request_json(row.get("request_parameters"))
    resp = request_json(row.get("response_elements"))
    group_id, rules, notes = _rules(name, req, resp, rule_egress)
    failed = row.get("error_code") is not None
    severity, summary = _severity(name, rules, sensitive, failed, row.get("error_code"))
    if notes:
        summary = f"{summary} ({'; '.join(notes)})"
    summary += _after(row)
    out = {c: row.get(c) for c in COLUMNS if c in row}
    out.update(group_id=group_id, rules=rules, summary=summary, severity=severity)
    return {c: out.get(c) for c in COLUMNS}


def _after(row: Mapping[str, Any]) -> str:
    """What came through after an event that opened ingress (report.sql, from the timeline), in words. The caller's
    own address among them is context (the author testing the change), not an all-clear."""
    count = row.get("public_sources_after")
    if count is None:
        return ""
    if count == 0:
        return "; no internet address connected afterwards"
    text = f"; {count} internet address{'es' if count != 1 else ''} connected afterwards"
    if row.get("actor_ip_seen_after"):
        text += ", the caller's own" if count == 1 else ", one of them the caller's own"
    return text


def _port(value: Any) -> int | None:
    try:
        return int(value)  # ports arrive as numbers or strings ("443")
    except (TypeError, ValueError):
        return None


def _rule(direction: str | None, protocol: Any, from_port: Any, to_port: Any, source: str | None, **extra: Any) -> dict[str, Any]:
    proto = protocol_number(protocol) if protocol is not None else None
    lo, hi = _port(from_port), _port(to_port)
    if proto == -1:
        lo = hi = None  # all protocols: ports do not apply
    return {"direction": direction, "protocol": proto, "from_port": lo, "to_port": hi, "source": source, **extra}


def _permission_rules(direction: str | None, perms: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for p in perms:
        if not isinstance(p, dict):
            continue
        args = (direction, p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"))
        sources = [r.get("cidrIp") for r in items(p.get("ipRanges")) if isinstance(r, dict)]
        sources += [r.get("cidrIpv6") for r in items(p.get("ipv6Ranges")) if isinstance(r, dict)]
        sources += [r.get("prefixListId") for r in items(p.get("prefixListIds")) if isinstance(r, dict)]
        sources += [g.get("groupId") or g.get("groupName") for g in items(p.get("groups")) if isinstance(g, dict)]
        out.extend(_rule(*args, s) for s in sources if s)
        if not any(sources):
            out.append(_rule(*args, None))
    return out


def _rules(name: str, req: Mapping[str, Any], resp: Mapping[str, Any],
           rule_egress: Mapping[str, bool]) -> tuple[str | None, list[dict[str, Any]], list[str]]:
    notes: list[str] = []
    if name == "CreateSecurityGroup":
        return resp.get("groupId"), [], notes
    if name in ("ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute"):
        target = req.get("networkInterfaceId") or req.get("instanceId")
        groups = [g.get("groupId") for g in items(req.get("groupSet")) if isinstance(g, dict)]
        return target, [_rule("attach", None, None, None, g) for g in groups if g], notes
    if name == "ModifySecurityGroupRules":
        inner = req.get("ModifySecurityGroupRulesRequest") or req
        rules = []
        for entry in items(inner.get("SecurityGroupRule")):
            if not isinstance(entry, dict):
                continue
            rule_id = entry.get("SecurityGroupRuleId")
            spec = entry.get("SecurityGroupRule") or {}
            if rule_id in rule_egress:
                direction = "egress" if rule_egress[rule_id] else "ingress"
            else:
                direction = "ingress"
                notes.append(f"{rule_id or 'a rule'} is not in the inventory: assumed ingress")
            source = spec.get("CidrIpv4") or spec.get("CidrIpv6") or spec.get("PrefixListId") or spec.get("ReferencedGroupId")
            rules.append(_rule(direction, spec.get("IpProtocol"), spec.get("FromPort"), spec.get("ToPort"), source,
                               rule_id=rule_id))
        return inner.get("GroupId"), rules, notes
    group_id = req.get("groupId") or req.get("groupName")
    direction = _DIRECTION.get(name)
    rules = _permission_rules(direction, items(req.get("ipPermissions")))
    if req.get("cidrIp") or req.get("ipProtocol") or req.get("sourceSecurityGroupName"):  # the legacy flat shape
        rules.append(_rule(direction, req.get("ipProtocol", "-1"), req.get("fromPort"), req.get("toPort"),
                           req.get("cidrIp") or req.get("sourceSecurityGroupName")))
    for item in items(req.get("securityGroupRuleIds")):
        rule_id = item.get("securityGroupRuleId") if isinstance(item, dict) else item
        if rule_id:
            rules.append(_rule(direction, None, None, None, None, rule_id=rule_id))
    return group_id, rules, notes


# What each call does, as the verb of a finding title (past tense; "tried to" + the infinitive when it failed).
_VERBS = {
    "AuthorizeSecurityGroupIngress": ("added", "add"), "AuthorizeSecurityGroupEgress": ("added", "add"),
    "RevokeSecurityGroupIngress": ("revoked", "revoke"), "RevokeSecurityGroupEgress": ("revoked", "revoke"),
    "ModifySecurityGroupRules": ("changed", "change"),
    "UpdateSecurityGroupRuleDescriptionsIngress": ("updated the descriptions of", "update the descriptions of"),
    "UpdateSecurityGroupRuleDescriptionsEgress": ("updated the descriptions of", "update the descriptions of"),
    "CreateSecurityGroup": ("created the group", "create a group"),
    "DeleteSecurityGroup": ("deleted the group", "delete a group"),
    "ModifyNetworkInterfaceAttribute": ("set the groups", "set the groups"),
    "ModifyInstanceAttribute": ("set the groups", "set the groups"),
}


def _severity(name: str, rules: list[dict[str, Any]], sensitive: set[int], failed: bool,
              error_code: str | None) -> tuple[str | None, str]:
    """The severity of a call and what it did, in words: ``opened RDP (tcp/3389) to the internet``; a failed
    call ``tried to open …, refused (Client.UnauthorizedOperation)``."""
    open_ingress = [r for r in rules if r["direction"] == "ingress" and world_open(r["source"])]
    hot = [r for r in open_ingress if covers_sensitive(r, sensitive)]
    if name in _OPENING and any(r["protocol"] == -1 for r in open_ingress):
        severity, done, todo = "critical", "opened all traffic to the internet", "open all traffic to the internet"
    elif name in _OPENING and hot:
        what = _ports(hot, sensitive)
        severity, done, todo = "high", f"opened {what} to the internet", f"open {what} to the internet"
    elif name in _OPENING and open_ingress:
        what = _ports(open_ingress, set())
        severity, done, todo = "medium", f"opened {what} to the internet", f"open {what} to the internet"
    elif name in _OPENING and any(r["direction"] == "egress" and world_open(r["source"]) for r in rules):
        severity, done, todo = "info", "allowed egress to the internet", "allow egress to the internet"
    else:
        severity = None
        done, todo = _describe(name, rules)
    if failed:
        return "low", f"tried to {todo} and was refused ({error_code})"
    return severity, done


def _ports(rules: list[dict[str, Any]], sensitive: set[int]) -> str:
    """The ports a set of rules opens, as service names: ``SSH (tcp/22) and RDP (tcp/3389)``."""
    out = []
    for r in rules:
        lo, hi, proto = r["from_port"], r["to_port"], r["protocol"]
        if sensitive and lo is not None and hi is not None and lo != hi and lo != -1:
            out.extend(fmt.service(p, proto) for p in sorted(sensitive) if lo <= p <= hi)
        else:
            out.append(fmt.ports(proto, lo, hi))
    return fmt.join(dict.fromkeys(out))


def _describe(name: str, rules: list[dict[str, Any]]) -> tuple[str, str]:
    done, todo = _VERBS.get(name, (f"called {name}", f"call {name}"))
    if name in ("CreateSecurityGroup", "DeleteSecurityGroup"):
        return done, todo
    if name in ("ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute"):
        groups = fmt.join(r["source"] for r in rules if r.get("source")) or "no group"
        return f"{done} to {groups}", f"{todo} to {groups}"
    what = fmt.rules(rules) if rules else "no rule"
    noun = fmt.count(len(rules), "rule")
    return f"{done} {noun}: {what}", f"{todo} {noun}: {what}"
