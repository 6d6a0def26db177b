"""The security-group timeline, pure: the inventory walked back and forth through the SG events."""

from __future__ import annotations

from datetime import datetime, timezone

from auditor.timeline.build import build_timeline
from auditor.timeline.events import Rule, SgEvent, parse_events


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def ssh(cidr="0.0.0.0/0", group="sg-1", rule_id=None):
    return Rule(group, False, 6, 22, 22, cidr_ipv4=cidr, rule_id=rule_id)


def ev(name, time, **kw):
    return SgEvent(event_id=f"{name}-{time}", time=t(time), name=name, actor="arn:aws:iam::1:user/alice",
                   source_ip="198.51.100.44", **kw)


def intervals(timeline, group="sg-1"):
    return sorted(((v.rule.cidr_ipv4, v.valid_from, v.valid_until) for v in timeline.rules if v.rule.group_id == group),
                  key=lambda x: (x[1] or t("1970-01-01"), x[0] or ""))


def test_walking_back_from_a_later_capture_finds_when_a_rule_was_opened_and_closed():
    events = [ev("AuthorizeSecurityGroupIngress", "2026-11-10T12:00", group_id="sg-1", added=(ssh(),)),
              ev("RevokeSecurityGroupIngress", "2026-11-10T12:40", group_id="sg-1", removed=(ssh(),)),
              ev("AuthorizeSecurityGroupIngress", "2026-11-11T00:00", group_id="sg-1", added=(ssh("198.51.100.0/24"),))]
    tl = build_timeline([ssh("198.51.100.0/24", rule_id="sgr-vpn")], {"eni-1": ["sg-1"]}, events, t("2026-11-20T00:00"))
    assert intervals(tl) == [("0.0.0.0/0", t("2026-11-10T12:00"), t("2026-11-10T12:40")),
                             ("198.51.100.0/24", t("2026-11-11T00:00"), None)]
    opened = next(v for v in tl.rules if v.rule.cidr_ipv4 == "0.0.0.0/0")
    assert (opened.opened.actor, opened.closed.name) == ("arn:aws:iam::1:user/alice", "RevokeSecurityGroupIngress")
    assert tl.unknowns == ()
    assert tl.changed_interfaces(t("2026-11-09T00:00"), t("2026-11-16T00:00")) == ("eni-1",)
    assert tl.changed_interfaces(t("2026-11-12T00:00"), t("2026-11-16T00:00")) == ()


def test_walking_forward_from_an_earlier_capture():
    events = [ev("RevokeSecurityGroupIngress", "2026-11-12T00:00", group_id="sg-1", removed=(ssh(),))]
    tl = build_timeline([ssh(rule_id="sgr-1")], {}, events, t("2026-11-01T00:00"))
    assert intervals(tl) == [("0.0.0.0/0", None, t("2026-11-12T00:00"))]


def test_a_modify_leaves_the_time_before_it_unknown_and_the_rule_known_after():
    new = ssh("10.0.0.0/8", rule_id="sgr-1")
    events = [ev("ModifySecurityGroupRules", "2026-11-12T00:00", group_id="sg-1", modified=(new,))]
    tl = build_timeline([new], {}, events, t("2026-11-20T00:00"))
    assert intervals(tl) == [("10.0.0.0/8", t("2026-11-12T00:00"), None)]
    (unknown,) = tl.unknowns
    assert (unknown.kind, unknown.resource_id, unknown.piece, unknown.valid_from, unknown.valid_until) == (
        "group", "sg-1", "sgr-1", None, t("2026-11-12T00:00"))
    assert "does not carry the old rule" in unknown.reason


def test_a_groupset_change_leaves_the_groups_before_it_unknown():
    events = [ev("ModifyNetworkInterfaceAttribute", "2026-11-12T00:00", interface_id="eni-1", group_set=("sg-2",))]
    tl = build_timeline([], {"eni-1": ["sg-2"]}, events, t("2026-11-20T00:00"))
    assert [(a.group_id, a.valid_from, a.valid_until) for a in tl.attachments] == [("sg-2", t("2026-11-12T00:00"), None)]
    assert [(u.kind, u.resource_id, u.valid_until) for u in tl.unknowns] == [("interface", "eni-1", t("2026-11-12T00:00"))]


def test_cloudtrail_ending_before_the_capture_leaves_the_gap_unknown():
    tl = build_timeline([ssh(rule_id="sgr-1")], {"eni-1": ["sg-1"]}, [], t("2026-11-20T00:00"),
                        trail_end=t("2026-11-14T00:00"))
    gaps = {(u.kind, u.resource_id): (u.valid_from, u.valid_until) for u in tl.unknowns}
    assert gaps == {("group", "sg-1"): (t("2026-11-14T00:00"), t("2026-11-20T00:00")),
                    ("interface", "eni-1"): (t("2026-11-14T00:00"), t("2026-11-20T00:00"))}
    assert intervals(tl) == [("0.0.0.0/0", None, None)]  # a rule known to be in force stays known
    assert tl.notes


def test_a_group_created_and_deleted_between_and_one_deleted_with_unknown_rules():
    events = [ev("CreateSecurityGroup", "2026-11-10T00:00", group_id="sg-tmp"),
              ev("AuthorizeSecurityGroupIngress", "2026-11-10T01:00", group_id="sg-tmp", added=(ssh(group="sg-tmp"),)),
              ev("DeleteSecurityGroup", "2026-11-10T05:00", group_id="sg-tmp"),
              ev("DeleteSecurityGroup", "2026-11-11T00:00", group_id="sg-old")]
    tl = build_timeline([], {}, events, t("2026-11-20T00:00"))
    assert intervals(tl, "sg-tmp") == [("0.0.0.0/0", t("2026-11-10T01:00"), t("2026-11-10T05:00"))]
    assert [(u.resource_id, u.valid_from, u.valid_until) for u in tl.unknowns] == [
        ("sg-old", None, t("2026-11-11T00:00"))]


def test_a_revoke_by_rule_id_of_a_rule_the_inventory_never_held_is_unknown_before():
    events = [ev("RevokeSecurityGroupIngress", "2026-11-12T00:00", group_id="sg-1", removed_ids=("sgr-gone",))]
    tl = build_timeline([], {}, events, t("2026-11-20T00:00"))
    assert [(u.piece, u.valid_until) for u in tl.unknowns] == [("sgr-gone", t("2026-11-12T00:00"))]


def test_events_from_cloudtrail_rows_failed_and_duplicate_ones_left_out():
    row = {"event_id": "e1", "event_time": "2026-11-10T12:00:00Z", "event_name": "AuthorizeSecurityGroupIngress",
           "actor": "alice", "source_ip": "198.51.100.44", "error_code": None,
           "request_parameters": '{"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22,'
                                 ' "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}',
           "response_elements": '{"_return": true}'}
    failed = {**row, "event_id": "e2", "error_code": "UnauthorizedOperation"}
    events, unreadable = parse_events([row, dict(row), failed, {**row, "event_id": "e3", "event_time": "soon"}], {})
    assert unreadable == 1
    assert [(e.event_id, e.added) for e in events] == [("e1", (ssh(),))]


def test_a_rule_authorized_then_modified_is_known_throughout():
    created = ssh(rule_id="sgr-1")
    narrowed = ssh("10.0.0.0/8", rule_id="sgr-1")
    events = [ev("AuthorizeSecurityGroupIngress", "2026-11-10T00:00", group_id="sg-1", added=(created,)),
              ev("ModifySecurityGroupRules", "2026-11-12T00:00", group_id="sg-1", modified=(narrowed,))]
    tl = build_timeline([narrowed], {}, events, t("2026-11-20T00:00"))
    assert intervals(tl) == [("0.0.0.0/0", t("2026-11-10T00:00"), t("2026-11-12T00:00")),
                             ("10.0.0.0/8", t("2026-11-12T00:00"), None)]
    assert tl.unknowns == ()
