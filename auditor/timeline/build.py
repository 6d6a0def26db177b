"""The security-group timeline: which rules each group had, and which groups each interface carried, and when.

Pure: inventory rows and CloudTrail events in, validity intervals out. The inventory snapshot is the anchor, true
at its ``captured_at``. The events before it are undone one by one, newest first, to find the state at the start
of the events read; then every event is replayed in time order from there, which gives each rule version and
each group set an interval ``[valid_from, valid_until)`` (None: before the timeline starts, or still in force).

What an event does not say is not guessed: it becomes an *unknown* stretch of the group (or interface) it
touched, with the reason:

- before a ``ModifySecurityGroupRules``: the event carries the new rule, not the old one;
- before a Revoke by rule ID of a rule the inventory does not hold: its content is not in the event;
- before a ``DeleteSecurityGroup`` of a group the inventory does not hold: its rules are not in the event;
- before a groupSet change (``ModifyNetworkInterfaceAttribute``): the event carries the new set only;
- between the last CloudTrail event read and the capture time, when CloudTrail ends earlier.

Rules known to be in force during an unknown stretch stay known: the stretch says that *more* may have been
there. docs/timeline.md explains it with a worked example.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from auditor.timeline.events import Rule, SgEvent

WHOLE_GROUP = "*"  # the unknown piece that stands for every rule of a group


@dataclass(frozen=True)
class Change:
    """Who opened or closed a version: the event, its time, its caller and the caller's address."""

    event_id: str | None
    time: datetime
    actor: str | None
    source_ip: str | None
    name: str


@dataclass(frozen=True)
class RuleVersion:
    rule: Rule
    valid_from: datetime | None  # None: before the timeline starts
    valid_until: datetime | None  # None: still in force at its end
    opened: Change | None = None
    closed: Change | None = None


@dataclass(frozen=True)
class Attachment:
    """An interface carried a group over ``[valid_from, valid_until)``."""

    interface_id: str
    group_id: str
    valid_from: datetime | None
    valid_until: datetime | None
    opened: Change | None = None
    closed: Change | None = None


@dataclass(frozen=True)
class Unknown:
    """A stretch where a group's rules (``kind`` group) or an interface's groups (``kind`` interface) cannot be
    recovered. ``piece`` is the rule ID whose content is unknown, or ``*`` for the whole group or set."""

    kind: str
    resource_id: str
    piece: str
    valid_from: datetime | None
    valid_until: datetime | None
    reason: str


@dataclass(frozen=True)
class Timeline:
    rules: tuple[RuleVersion, ...]
    attachments: tuple[Attachment, ...]
    unknowns: tuple[Unknown, ...]
    captured_at: datetime | None
    events: int = 0  # the events replayed
    notes: tuple[str, ...] = ()

    def changed_interfaces(self, since: datetime, until: datetime) -> tuple[str, ...]:
        """The interfaces whose admitted traffic may differ inside ``[since, until)``: a version or unknown stretch
        of the interface, or of a group it carried then, starts or ends strictly inside it. For the others the
        state at ``since`` holds for the whole window."""
        def inside(t: datetime | None) -> bool:
            return t is not None and since < t < until

        def overlaps(a: datetime | None, b: datetime | None) -> bool:
            return (a is None or a < until) and (b is None or b > since)

        groups = {v.rule.group_id for v in self.rules if inside(v.valid_from) or inside(v.valid_until)}
        groups |= {u.resource_id for u in self.unknowns if u.kind == "group"
                   and (inside(u.valid_from) or inside(u.valid_until))}
        out = {a.interface_id for a in self.attachments
               if overlaps(a.valid_from, a.valid_until)
               and (a.group_id in groups or inside(a.valid_from) or inside(a.valid_until))}
        out |= {u.resource_id for u in self.unknowns if u.kind == "interface"
                and (inside(u.valid_from) or inside(u.valid_until))}
        return tuple(sorted(out))


@dataclass
class _Open:
    rule: Rule
    since: datetime | None
    opened: Change | None


@dataclass
class _State:
    """Every group's open rule versions and unknown pieces, and every interface's groups, at one instant."""

    rules: dict[str, dict[tuple, _Open]] = field(default_factory=dict)  # group -> content -> open version
    unknown: dict[tuple[str, str, str], tuple[datetime | None, str]] = field(default_factory=dict)
    groups_of: dict[str, dict[str, tuple[datetime | None, Change | None]]] = field(default_factory=dict)


def build_timeline(inventory_rules: Iterable[Rule], inventory_groups: Mapping[str, Sequence[str]],
                   events: Sequence[SgEvent], captured_at: datetime | None, *,
                   trail_end: datetime | None = None) -> Timeline:
    """The timeline from the inventory (its rules, and interface -> groups) and the SG events read, in time order.

    ``trail_end``: the time up to which CloudTrail was read, when it ends before ``captured_at``; the stretch between
    is unknown for every group and interface. Without ``captured_at`` (an inventory that says nothing of its time)
    the events cannot be placed around it: the inventory's state is taken for the whole timeline and a note says so.
    """
    rules = list(inventory_rules)
    if captured_at is None:
        events = ()
    state = _State()
    for r in rules:
        state.rules.setdefault(r.group_id, {})[r.content] = _Open(r, None, None)
    for interface, groups in inventory_groups.items():
        state.groups_of[interface] = {g: (None, None) for g in groups}
    before = [e for e in events if captured_at is not None and e.time <= captured_at]
    for event in reversed(before):
        _undo(state, event)
    # Replay from the state before the first event: what undo could not recover is now unknown from the start.
    versions: list[RuleVersion] = []
    attachments: list[Attachment] = []
    unknowns: list[Unknown] = []
    for event in events:
        _apply(state, event, versions, attachments, unknowns)
    for by_content in state.rules.values():
        versions += [RuleVersion(o.rule, o.since, None, o.opened) for o in by_content.values()]
    for interface, groups in state.groups_of.items():
        attachments += [Attachment(interface, g, since, None, opened) for g, (since, opened) in groups.items()]
    unknowns += [Unknown(kind, rid, piece, since, None, reason) for (kind, rid, piece), (since, reason)
                 in state.unknown.items()]
    notes: list[str] = []
    if trail_end is not None and captured_at is not None and trail_end < captured_at:
        reason = "CloudTrail read ends before the inventory was captured"
        every_group = {v.rule.group_id for v in versions} | {r.group_id for r in rules}
        unknowns += [Unknown("group", g, WHOLE_GROUP, trail_end, captured_at, reason) for g in sorted(every_group)]
        unknowns += [Unknown("interface", i, WHOLE_GROUP, trail_end, captured_at, reason)
                     for i in sorted({a.interface_id for a in attachments})]
        notes.append(reason)
    if captured_at is None:
        notes.append("the inventory has no capture time: its rules are taken as in force throughout")
    return Timeline(rules=tuple(versions), attachments=tuple(attachments), unknowns=tuple(unknowns),
                    captured_at=captured_at, events=len(events), notes=tuple(notes))


def _change(event: SgEvent) -> Change:
    return Change(event.event_id, event.time, event.actor, event.source_ip, event.name)


def _find(by_content: Mapping[tuple, _Open], rule_id: str) -> tuple | None:
    return next((c for c, o in by_content.items() if o.rule.rule_id == rule_id), None)


def _undo(state: _State, event: SgEvent) -> None:
    """The state just before ``event``, from the state just after it."""
    if event.group_id is not None:
        group = state.rules.setdefault(event.group_id, {})
        for r in event.added:
            group.pop(r.content, None)
            if r.rule_id is not None:  # before its creation the rule was not there: nothing unknown about it
                state.unknown.pop(("group", event.group_id, r.rule_id), None)
        for r in event.removed:
            group[r.content] = _Open(r, None, None)
        for rid in event.removed_ids:
            state.unknown[("group", event.group_id, rid)] = (None, f"before {event.name} of {rid} at "
                                                             f"{_hhmm(event)}, which does not carry the rule")
        for r in event.modified:
            found = _find(group, r.rule_id or "")
            if found is not None:
                group.pop(found)
            state.unknown[("group", event.group_id, r.rule_id or WHOLE_GROUP)] = (
                None, f"before ModifySecurityGroupRules at {_hhmm(event)}, which does not carry the old rule")
        if event.name == "CreateSecurityGroup":
            group.clear()
            for key in [k for k in state.unknown if k[:2] == ("group", event.group_id)]:
                del state.unknown[key]
        elif event.name == "DeleteSecurityGroup":
            state.unknown[("group", event.group_id, WHOLE_GROUP)] = (
                None, f"before DeleteSecurityGroup at {_hhmm(event)}: its rules are not in the event")
    if event.interface_id is not None:
        state.groups_of[event.interface_id] = {}
        state.unknown[("interface", event.interface_id, WHOLE_GROUP)] = (
            None, f"before the groupSet change at {_hhmm(event)}, which carries the new set only")


def _apply(state: _State, event: SgEvent, versions: list[RuleVersion], attachments: list[Attachment],
           unknowns: list[Unknown]) -> None:
    """Replay ``event``: the versions and stretches it ends go to the lists, the ones it starts stay open."""
    change, t = _change(event), event.time

    def close_unknown(key: tuple[str, str, str]) -> None:
        if key in state.unknown:
            since, reason = state.unknown.pop(key)
            unknowns.append(Unknown(*key, since, t, reason))

    def close(group: dict[tuple, _Open], content: tuple) -> None:
        o = group.pop(content)
        versions.append(RuleVersion(o.rule, o.since, t, o.opened, change))

    if event.group_id is not None:
        group = state.rules.setdefault(event.group_id, {})
        for r in event.added:
            if r.content not in group:
                group[r.content] = _Open(r, t, change)
        for r in event.removed:
            if r.content in group:
                close(group, r.content)
        for rid in event.removed_ids:
            found = _find(group, rid)
            if found is not None:
                close(group, found)
            close_unknown(("group", event.group_id, rid))
        for r in event.modified:
            found = _find(group, r.rule_id or "")
            if found is not None:
                if r.content == found:
                    continue  # a description-only modify: the same rule goes on
                old = group[found].rule
                close(group, found)
                r = replace(r, is_egress=old.is_egress)
            close_unknown(("group", event.group_id, r.rule_id or WHOLE_GROUP))
            group[r.content] = _Open(r, t, change)
        if event.name == "DeleteSecurityGroup":
            for content in list(group):
                close(group, content)
            for key in [k for k in state.unknown if k[:2] == ("group", event.group_id)]:
                close_unknown(key)
    if event.interface_id is not None:
        current = state.groups_of.setdefault(event.interface_id, {})
        for g, (since, opened) in current.items():
            if g not in event.group_set:
                attachments.append(Attachment(event.interface_id, g, since, t, opened, change))
        state.groups_of[event.interface_id] = {g: current.get(g, (t, change)) for g in event.group_set}
        close_unknown(("interface", event.interface_id, WHOLE_GROUP))


def _hhmm(event: SgEvent) -> str:
    return event.time.strftime("%Y-%m-%d %H:%M UTC")
