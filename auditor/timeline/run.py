"""Building the run's timeline: the SG events read from the CloudTrail engine (whatever it is) from the window's
start to the inventory's capture, the timeline built from them and the inventory, its tables loaded into the
workspace, and the narrow flow query for the interfaces that changed inside the window. Every query is one the
report's appendix lists and prices like a check's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from auditor.engines.base import Engine
from auditor.engines.embedded import Workspace
from auditor.models import Query, QueryRun, TimeWindow, iso_z
from auditor.tables import TIMELINE_TABLES
from auditor.timeline.build import WHOLE_GROUP, Timeline, build_timeline
from auditor.timeline.events import Rule, instant, parse_events

QUERIES = Path(__file__).parent
_ARROW = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(), "BIGINT": pa.int64(),
          "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}


@dataclass(frozen=True)
class TimelineRun:
    """What building the timeline did, for the checks that read it: its queries (listed in the appendix) and
    notes (what it could not recover)."""

    timeline: Timeline | None
    runs: tuple[QueryRun, ...] = ()
    notes: tuple[str, ...] = ()
    covers_capture: bool = False  # CloudTrail was read from the window to the inventory's capture, without a gap
    error: str | None = None  # why it could not be built: the checks that read it then error with this reason


def events_window(window: TimeWindow, captured_at: datetime | None) -> TimeWindow:
    """The CloudTrail the timeline reads: the window, stretched to the inventory's capture time."""
    if captured_at is None:
        return window
    return window.union(TimeWindow(min(window.since, captured_at), max(window.until, captured_at)))


def build_for_run(workspace: Workspace, window: TimeWindow, *, trail_engine: Engine | None,
                  flow_engine: Engine | None, sg_events_query: Mapping[str, str], params: Mapping[str, Any],
                  delivery_lag: Any) -> TimelineRun:
    """Build the timeline into ``workspace``'s tables. ``sg_events_query``: dialect -> the SG events query (the
    sg_changes check's, so the two read the same events). Without a CloudTrail engine the inventory's state is
    taken as in force throughout, and the notes say so."""
    if workspace.inventory is None:
        return TimelineRun(None, notes=("no inventory: the rules in force are not known",))
    captured_at = workspace.inventory.captured_at
    rule_egress = workspace.rule_egress()
    runs: list[QueryRun] = []
    notes: list[str] = []
    events, trail_end = [], None
    if trail_engine is not None and trail_engine.dialect in sg_events_query:
        span = events_window(window, captured_at)
        query = Query(check_id="timeline", name="sg_events", text=sg_events_query[trail_engine.dialect],
                      dialect=trail_engine.dialect, tables=frozenset({"cloudtrail"}), window=span, params=params)
        result = trail_engine.run(query, span, params)
        runs.append(QueryRun("timeline: security-group events", trail_engine.name, result.stats.text_as_run,
                             result.stats, len(result.rows)))
        events, unreadable = parse_events(result.records(), rule_egress)
        if unreadable:
            notes.append(f"timeline: {unreadable} security-group events had no readable time and were left out")
        if captured_at is not None and captured_at > window.until and trail_engine.dialect == "trino":
            trail_end, run = _trail_end(trail_engine, TimeWindow(window.since, captured_at), params)
            runs.append(run)
            if trail_end is not None and trail_end >= captured_at - delivery_lag:
                trail_end = None  # CloudTrail reaches the capture, within its delivery lag
            elif trail_end is not None:
                notes.append(f"timeline: CloudTrail read ends at {iso_z(trail_end)}, before the inventory's capture "
                             f"at {iso_z(captured_at)}: the rules between are unknown")
    else:
        notes.append("timeline: no CloudTrail source, so the inventory's rules and groups are taken as in force "
                     "throughout the window")
    rules, groups = _inventory(workspace)
    timeline = build_timeline(rules, groups, events, captured_at, trail_end=trail_end)
    load(workspace, timeline)
    changed = timeline.changed_interfaces(window.since, window.until)
    _insert(workspace, "timeline_changed", [{"interface_id": i} for i in changed])
    if changed and flow_engine is not None:
        runs.append(_flow_times(workspace, flow_engine, window, changed, params))
    read = [name for name, engine in (("cloudtrail", trail_engine), ("flow_logs", flow_engine)) if engine is not None]
    _insert(workspace, "timeline_inputs", [{"source": name} for name in read])
    notes.extend(unknown_notes(timeline, window))
    covers = trail_engine is not None and trail_end is None and captured_at is not None
    return TimelineRun(timeline, tuple(runs), tuple(notes), covers_capture=covers)


def unknown_notes(timeline: Timeline, window: TimeWindow, limit: int = 5) -> list[str]:
    """The unknown stretches that reach into the window, in words, at most ``limit`` of them and a count of the
    rest: the report says where the rules as they were cannot be known, and why."""
    inside = [u for u in timeline.unknowns if (u.valid_from is None or u.valid_from < window.until)
              and (u.valid_until is None or u.valid_until > window.since)]
    inside.sort(key=lambda u: (u.kind, u.resource_id, u.valid_until or window.until))
    out = []
    for u in inside[:limit]:
        what = f"the groups of {u.resource_id}" if u.kind == "interface" else (
            f"the rules of {u.resource_id}" if u.piece == WHOLE_GROUP else f"rule {u.piece} of {u.resource_id}")
        start = "" if u.valid_from is None or u.valid_from <= window.since else f" from {iso_z(u.valid_from)}"
        end = "" if u.valid_until is None or u.valid_until >= window.until else f" until {iso_z(u.valid_until)}"
        out.append(f"timeline: {what} cannot be known{start}{end}: {u.reason}")
    if len(inside) > limit:
        out.append(f"timeline: and {len(inside) - limit} more stretches that cannot be known (docs/timeline.md)")
    return out


def _inventory(workspace: Workspace) -> tuple[list[Rule], dict[str, list[str]]]:
    cur = workspace.con.execute(
        "SELECT group_id, is_egress, protocol, from_port, to_port, cidr_ipv4, cidr_ipv6, prefix_list_id, "
        "referenced_group_id, rule_id FROM sg_rules WHERE group_id IS NOT NULL")
    rules = [Rule(*row) for row in cur.fetchall()]
    groups: dict[str, list[str]] = {}
    for interface, group in workspace.con.execute(
            "SELECT interface_id, group_id FROM eni_groups WHERE interface_id IS NOT NULL AND group_id IS NOT NULL "
            "ORDER BY interface_id, group_id").fetchall():
        groups.setdefault(interface, []).append(group)
    return rules, groups


def _trail_end(engine: Engine, span: TimeWindow, params: Mapping[str, Any]) -> tuple[datetime | None, QueryRun]:
    query = Query(check_id="timeline", name="trail_end", text=(QUERIES / "trail_end.sql").read_text(encoding="utf-8"),
                  dialect=engine.dialect, tables=frozenset({"cloudtrail"}), window=span, params=params)
    result = engine.run(query, span, params)
    run = QueryRun("timeline: last CloudTrail event", engine.name, result.stats.text_as_run, result.stats,
                   len(result.rows))
    value = result.rows[0][0] if result.rows else None
    return (instant(value) if value is not None else None), run


def _flow_times(workspace: Workspace, engine: Engine, window: TimeWindow, interfaces: Sequence[str],
                params: Mapping[str, Any]) -> QueryRun:
    name = {"trino": "flow_times.sql", "insights": "flow_times.insights"}[engine.dialect]
    params = {**params, "interface_ids": tuple(interfaces)}
    query = Query(check_id="timeline", name="flow_times", text=(QUERIES / name).read_text(encoding="utf-8"),
                  dialect=engine.dialect, tables=frozenset({"flow_logs"}), window=window, params=params)
    result = engine.run(query, window, params)
    _insert(workspace, "flow_times", result.records())
    return QueryRun("timeline: flows of the interfaces that changed", engine.name, result.stats.text_as_run,
                    result.stats, len(result.rows))


def load(workspace: Workspace, timeline: Timeline) -> None:
    """Fill the timeline tables (:data:`auditor.tables.TIMELINE_TABLES`) from ``timeline``."""
    def change(c: Any, prefix: str) -> dict[str, Any]:
        if c is None:
            return {}
        return {f"{prefix}_event_id": c.event_id, f"{prefix}_by": c.actor, f"{prefix}_ip": c.source_ip}

    rules = []
    for v in timeline.rules:
        r = v.rule
        rules.append({"rule_id": r.rule_id, "group_id": r.group_id, "is_egress": r.is_egress,
                      "protocol": r.protocol, "from_port": r.from_port, "to_port": r.to_port,
                      "cidr_ipv4": r.cidr_ipv4, "cidr_ipv6": r.cidr_ipv6, "prefix_list_id": r.prefix_list_id,
                      "referenced_group_id": r.referenced_group_id, "valid_from": v.valid_from,
                      "valid_until": v.valid_until, **change(v.opened, "opened"), **change(v.closed, "closed")})
    _insert(workspace, "sg_rule_versions", rules)
    _insert(workspace, "eni_group_versions", [
        {"interface_id": a.interface_id, "group_id": a.group_id, "valid_from": a.valid_from,
         "valid_until": a.valid_until, "opened_event_id": a.opened.event_id if a.opened else None,
         "closed_event_id": a.closed.event_id if a.closed else None} for a in timeline.attachments])
    _insert(workspace, "sg_unknown", [
        {"kind": u.kind, "resource_id": u.resource_id, "piece": u.piece, "valid_from": u.valid_from,
         "valid_until": u.valid_until, "reason": u.reason} for u in timeline.unknowns])


def _insert(workspace: Workspace, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` to one of the timeline tables, typed by its declaration (values travel as Arrow, never SQL)."""
    columns = TIMELINE_TABLES[table]
    if not rows:
        return
    schema = pa.schema([(name, _ARROW[kind]) for name, kind in columns])
    data = pa.table({name: [_value(row.get(name), kind) for row in rows] for name, kind in columns}, schema=schema)
    workspace.con.register("_timeline_rows", data)
    try:
        workspace.con.execute(f'INSERT INTO "{table}" SELECT * FROM _timeline_rows')  # table: a TIMELINE_TABLES key
    finally:
        workspace.con.unregister("_timeline_rows")


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind in ("INTEGER", "BIGINT"):
        return int(value)
    if kind == "TIMESTAMPTZ" and not isinstance(value, datetime):
        return instant(value)
    return value
