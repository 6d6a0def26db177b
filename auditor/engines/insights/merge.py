"""Splitting one Logs Insights query into what CloudWatch runs per window slice (and per 50 log groups), and
merging the slices' rows back into the answer the whole query would give.

A CloudWatch result stops at 10,000 rows, with no way to page past them
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html), and StartQuery takes at
most 50 log groups. So the CloudWatch engine runs a *remote* query over slices of the window and batches of log
groups, and this module makes those results merge correctly:

* A stats query is sent without what follows ``stats`` (no top-N ``sort``/``limit``), with every aggregation
  turned into parts that add up across slices: ``count`` and ``sum`` add, ``min``/``max`` take the least and
  greatest, ``avg`` is a sum and a count, ``earliest``/``latest`` carry their time. Across log-group batches
  (which cover the same time) that time must be the field's own first or last one, not the first event's of any
  kind: each ``earliest``/``latest`` then runs as its own sub-query that keeps only the events having the field
  (``filter ispresent(f)``), with ``min``/``max(@timestamp)`` beside it. ``count_distinct`` and
  ``pct`` need the full groups, so their field becomes one more ``by`` key (with ``count(*)`` as its weight),
  and the distinct count or percentile is computed here over the merged groups. What followed ``stats`` then
  runs locally over the merged rows.
* An event query (no stats) is sent whole; each slice returns its own top rows, so the trailing ``sort``,
  ``dedup`` and ``limit`` run again locally over the slices' rows together. The fields they need travel in
  the remote ``display``. A ``limit`` or ``dedup`` before other commands cannot be split, and is refused.

Remote output names are letters and digits only (``auditorG0``), which Logs Insights accepts without backticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from auditor.engines.insights.compiler import AGGREGATES, item_name
from auditor.engines.insights.parser import (
    Binary,
    Call,
    Command,
    Dedup,
    Display,
    Field,
    Fields,
    Filter,
    Item,
    Limit,
    Literal,
    Pipeline,
    Program,
    Sort,
    Stats,
    render_expr,
    walk,
)


@dataclass(frozen=True)
class AggregatePart:
    """How one aggregation call of the query is carried by the remote query and merged here."""

    call: Call
    merged: str  # the merged column's name: auditorM<i>
    kind: str  # sum, min, max, avg, arg_min, arg_max, distinct, pct
    remote: tuple[str, ...]  # the remote output columns it reads
    distinct_key: str | None = None  # the extra by-key (count_distinct, pct)
    percentile: float | None = None


@dataclass(frozen=True)
class RemotePlan:
    """One pipeline of a program, as CloudWatch runs it and as it is put back together."""

    kind: str  # "stats" or "events"
    remote: Pipeline  # what CloudWatch runs (the engine adds the parse clause and the window filter first)
    remote_columns: tuple[str, ...]  # the columns the remote rows carry
    local: tuple[Command, ...]  # commands run here over the merged rows
    keys: tuple[tuple[str, str], ...] = ()  # stats: (remote key column, output name)
    parts: tuple[AggregatePart, ...] = ()
    weight: str | None = None  # stats: the remote count(*) column that weighs distinct keys
    remote_limit: int | None = None  # events: the limit CloudWatch applies (a full slice is then no truncation)
    message_fields: tuple[tuple[str, str], ...] = ()  # events: (output name, top-level JSON key) read from @message
    helper: Pipeline | None = None  # stats: the query whose local compile gives each merged column's type
    dash_null: tuple[str, ...] = ()  # remote columns where a flow log's "-" means no value
    subqueries: tuple[Pipeline, ...] = ()  # stats across batches: earliest/latest over the events having the field
    # The same sub-queries without their "-" test, which the local compiler refuses on a numeric field (CloudWatch's
    # values are text): compiled for the columns' types only.
    typed_subqueries: tuple[Pipeline, ...] = ()


class PlanError(Exception):
    """A query the CloudWatch engine cannot split; ``pos`` is where in the query."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


_TAIL = (Sort, Limit, Dedup, Display)


def plan(pipeline: Pipeline, *, output: Sequence[Any], obj_sources: dict[str, str], batched: bool = False,
         dash_means_absent: bool = False) -> RemotePlan:
    """The remote query and the merge for one pipeline. ``output`` are the pipeline's output columns
    (OutputColumn) from the local compile; ``obj_sources`` maps output names holding a whole JSON object
    (CloudTrail's requestParameters...) to that object's key. ``batched``: the query runs over more than one
    batch of log groups, so ``earliest``/``latest`` need the time of the field's own first/last value;
    ``dash_means_absent``: a ``-`` value is no value (flow logs)."""
    commands = list(pipeline.commands)
    stats_at = next((i for i, c in enumerate(commands) if isinstance(c, Stats)), None)
    if stats_at is None:
        cut = _tail_start(commands)
        unsplittable = [c for c in commands[:cut] if isinstance(c, (Limit, Dedup))]
    else:
        unsplittable = [c for c in commands[:stats_at] if isinstance(c, (Limit, Dedup))]
    if unsplittable:
        c = unsplittable[0]
        raise PlanError(f"{type(c).__name__.lower()} before other commands cannot be split across window slices "
                        "and log-group batches", c.pos)
    if stats_at is None:
        return _events(pipeline, commands, output, obj_sources)
    return _stats(pipeline, commands[:stats_at], commands[stats_at], commands[stats_at + 1:], batched=batched,
                  dash_means_absent=dash_means_absent)


def _tail_start(commands: list[Command]) -> int:
    """Where the trailing run of sort/limit/dedup/display commands starts."""
    cut = len(commands)
    while cut > 0 and isinstance(commands[cut - 1], _TAIL):
        cut -= 1
    return cut


def _events(pipeline: Pipeline, commands: list[Command], output: Sequence[Any],
            obj_sources: dict[str, str]) -> RemotePlan:
    cut = _tail_start(commands)
    head, tail = commands[:cut], [c for c in commands[cut:] if not isinstance(c, Display)]
    names = [c.name for c in output]
    shown = [n for n in names if n not in obj_sources]
    needed: list[str] = []
    for c in tail:
        if isinstance(c, Sort):
            needed += [k.field.name for k in c.keys]
        elif isinstance(c, Dedup):
            needed += [f.name for f in c.fields]
    if not any(isinstance(c, Sort) for c in tail):
        needed.append("@timestamp")  # the default order (newest first) must be re-applied here
    if obj_sources:
        needed.append("@message")
    remote_columns = list(dict.fromkeys(shown + needed))
    pos = pipeline.pos
    remote = Pipeline(pos, tuple(head) + (Display(pos, tuple(Field(pos, n) for n in remote_columns)),) + tuple(tail))
    limits = [c.count for c in tail if isinstance(c, Limit) and isinstance(c.count, int)]
    local = (Display(pos, tuple(Field(pos, n) for n in names)),) + tuple(tail)
    dash = tuple(c.name for c in output if c.source is not None and c.type == "str")
    return RemotePlan("events", remote, tuple(remote_columns), local, remote_limit=min(limits) if limits else None,
                      message_fields=tuple(obj_sources.items()), dash_null=dash)


def _stats(pipeline: Pipeline, head: list[Command], stats: Stats, tail: list[Command], *, batched: bool,
           dash_means_absent: bool) -> RemotePlan:
    pos = stats.pos
    remote_aggs: list[Item] = []
    keys: list[tuple[str, str]] = []
    by: list[Item] = []
    dash: list[str] = []
    for i, item in enumerate(stats.by):
        column = f"auditorG{i}"
        by.append(Item(item.pos, item.expr, column))
        keys.append((column, item.alias or item_name(item.expr)))
        if isinstance(item.expr, Field):
            dash.append(column)
    parts: list[AggregatePart] = []
    distinct: dict[str, str] = {}  # rendered field expression -> remote key column
    weight = None
    helper_aggs: list[Item] = []
    subqueries: list[Pipeline] = []
    typed_subqueries: list[Pipeline] = []
    key_items = tuple(by)  # the query's own keys, before any count_distinct/pct field joins them
    sub_columns: list[str] = []

    def add(expr: Any, name: str) -> str:
        remote_aggs.append(Item(pos, expr, name))
        return name

    calls = [n for item in stats.aggregates for n in walk(item.expr) if isinstance(n, Call) and n.name in AGGREGATES]
    for i, call in enumerate(calls):
        merged = f"auditorM{i}"
        helper_aggs.append(Item(call.pos, call, merged))
        p = f"auditorP{i}"
        if call.name == "count" or call.name == "sum":
            parts.append(AggregatePart(call, merged, "sum", (add(call, p),)))
        elif call.name in ("min", "max"):
            parts.append(AggregatePart(call, merged, call.name, (add(call, p),)))
        elif call.name == "avg":
            arg = call.args[0]
            s = add(Call(call.pos, "sum", (arg,), spelled="sum"), p + "s")
            n = add(Call(call.pos, "count", (arg,), spelled="count"), p + "n")
            parts.append(AggregatePart(call, merged, "avg", (s, n)))
        elif call.name in ("earliest", "latest"):
            time_call = Call(call.pos, "min" if call.name == "earliest" else "max", (Field(call.pos, "@timestamp"),),
                             spelled="min" if call.name == "earliest" else "max")
            if batched:
                subqueries.append(_present_subquery(pipeline, head, call, p, time_call, key_items, dash_means_absent))
                typed_subqueries.append(_present_subquery(pipeline, head, call, p, time_call, key_items, False))
                value, when = p, p + "t"
                sub_columns += [value, when]
            else:
                value = add(call, p)
                when = add(time_call, p + "t")
            parts.append(AggregatePart(call, merged, "arg_min" if call.name == "earliest" else "arg_max",
                                       (value, when)))
        else:  # count_distinct, pct: the field becomes a key
            arg = call.args[0]
            key_text = render_expr(arg)
            if key_text not in distinct:
                distinct[key_text] = f"auditorD{len(distinct)}"
                by.append(Item(arg.pos, arg, distinct[key_text]))
                if isinstance(arg, Field):
                    dash.append(distinct[key_text])
            if weight is None:
                weight = add(Call(pos, "count", (), True, "count"), "auditorW")
            if call.name == "count_distinct":
                parts.append(AggregatePart(call, merged, "distinct", (distinct[key_text],), distinct[key_text]))
            else:
                pct = call.args[1]
                assert isinstance(pct, Literal)
                parts.append(AggregatePart(call, merged, "pct", (distinct[key_text], weight), distinct[key_text],
                                           float(pct.value) / 100))
    if not remote_aggs:  # every aggregation went to a sub-query: the main query still lists the groups
        add(Call(pos, "count", (), True, "count"), "auditorK")
    remote = Pipeline(pipeline.pos, tuple(head) + (Stats(pos, tuple(remote_aggs), tuple(by)),))
    remote_columns = (tuple(i.alias for i in by) + tuple(i.alias for i in remote_aggs)  # type: ignore[misc]
                      + tuple(sub_columns))
    helper = Pipeline(pipeline.pos, tuple(head) + (Stats(pos, tuple(helper_aggs), stats.by),))
    # Locally: the keys as they were named, each aggregation item over the merged columns, then the original tail.
    by_call = {id(p.call): p.merged for p in parts}
    items = [Item(pos, Field(pos, out)) for _, out in keys]
    for item in stats.aggregates:
        items.append(Item(item.pos, _replace_calls(item.expr, by_call), item.alias or item_name(item.expr)))
    local = (Fields(pos, tuple(items)),) + tuple(tail)
    return RemotePlan("stats", remote, remote_columns, local, keys=tuple(keys), parts=tuple(parts), weight=weight,
                      helper=helper, dash_null=tuple(dash), subqueries=tuple(subqueries),
                      typed_subqueries=tuple(typed_subqueries))


def _present_subquery(pipeline: Pipeline, head: list[Command], call: Call, name: str, time_call: Call,
                      keys: tuple[Item, ...], dash_means_absent: bool) -> Pipeline:
    """``<head> | filter ispresent(f) | stats earliest(f) as <name>, min(@timestamp) as <name>t by <keys>``: the
    value with the time of the field's own first (or last) value, which merges exactly across batches."""
    arg = call.args[0] if call.args else None
    if not isinstance(arg, Field):
        raise PlanError(f"{call.spelled or call.name}() of an expression cannot be merged across log-group "
                        "batches; name it with fields first (fields x = ... | stats "
                        f"{call.spelled or call.name}(x))", call.pos)
    pos = call.pos
    present: Any = Call(pos, "ispresent", (arg,), spelled="ispresent")
    if dash_means_absent:  # a flow log's "-" is a value to CloudWatch, no value to us
        present = Binary(pos, "and", present, Binary(pos, "!=", arg, Literal(pos, "-")))
    stats = Stats(pos, (Item(pos, call, name), Item(pos, time_call, name + "t")), keys)
    return Pipeline(pipeline.pos, tuple(head) + (Filter(pos, present), stats))


def _replace_calls(expr: Any, merged: dict[int, str]) -> Any:
    if isinstance(expr, Call) and id(expr) in merged:
        return Field(expr.pos, merged[id(expr)])
    if isinstance(expr, Call):
        return replace(expr, args=tuple(_replace_calls(a, merged) for a in expr.args))
    for name in ("operand", "left", "right"):
        if hasattr(expr, name):
            expr = replace(expr, **{name: _replace_calls(getattr(expr, name), merged)})
    return expr


def merged_program(plan_: RemotePlan) -> Program:
    """The local part of a plan as a program (compiled over the merged table)."""
    return Program((Pipeline(plan_.remote.pos, plan_.local),))
