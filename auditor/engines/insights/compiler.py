"""Logs Insights AST -> DuckDB SQL over the ``flow_logs`` and ``cloudtrail`` tables (or any table).

Each command becomes one step of a chain of CTEs, in query order, so a ``filter`` after a ``limit`` filters the
limited rows, as in CloudWatch. Ephemeral fields (``fields ... as``, ``parse``) become columns of their step;
``stats`` starts a new row set that only holds its own output fields.

Literals and parameters are bound (``$__p1``), never pasted into the SQL text; identifiers are built by
sqlglot. The window travels as bound parameters too.

Semantics where CloudWatch's documentation is silent are chosen here once and documented in
``.notes/readme-insights.md``; the main ones:

* A missing field (a ``-`` in a flow log, a key an event lacks) is NULL: ``ispresent`` is false, a comparison
  with it is false (also under ``not`` and ``!=``), ``stats ... by`` groups it under a null key.
* A string in a numeric context (arithmetic, ``sum``, a comparison with a number) is read as a number, NULL
  when it is not one. A number compared with a string literal that is not a number compares as text.
* ``sort`` without ``asc``/``desc`` sorts ascending; a query without ``sort`` that returns events (no ``stats``)
  returns them newest first, and ``limit``/``dedup`` without a ``sort`` keep the newest, as the dedup page says.
* Booleans in the output are 0 and 1, as CloudWatch shows ``ispresent(x) as isRes``.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp

from auditor.engines.connection import connect
from auditor.engines.insights.catalog import NUMERIC, Catalog, col, fn, lit
from auditor.engines.insights.parser import (
    Binary,
    Call,
    Dedup,
    Display,
    Field,
    Fields,
    Filter,
    In,
    InsightsQueryError,
    InsightsUnsupportedError,
    Like,
    Limit,
    Literal,
    Param,
    Parse,
    Period,
    Pipeline,
    Program,
    Regex,
    Sort,
    Stats,
    Unary,
    render_expr,
    walk,
)
from auditor.models import TimeWindow

# Generated CloudWatch fields that the local tables cannot provide.
_UNAVAILABLE = {"@log": "the log group is not known for local files", "@ingestionTime": "no ingestion time locally",
                "@ptr": "@ptr is CloudWatch's pointer to a stored record", "@entity": "no entity locally"}

AGGREGATES = frozenset({"count", "count_distinct", "sum", "avg", "min", "max", "pct", "earliest", "latest"})
# Functions Logs Insights has that this tool does not implement: rejected as "not supported" rather than "unknown".
_KNOWN_UNSUPPORTED = frozenset({
    "stddev", "sortsfirst", "sortslast", "isempty", "ltrim", "rtrim", "trim", "substr", "replace", "strcontains",
    "greatest", "least", "log", "sqrt", "dateceil", "isvalidip", "isvalidipv4", "isvalidipv6", "isipv6insubnet",
    "jsonparse", "jsonstringify", "unmask", "coalesce_if", "if"})

# Milliseconds per bin/datefloor unit. Weeks, months, quarters and years are not supported: CloudWatch does not
# document how it aligns them.
_PERIOD_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNSAFE_REGEX = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?>|[*+?}]\+")


@dataclass(frozen=True)
class Typed:
    """A compiled expression and its static type (int, float, str, bool, ts, obj)."""

    sql: exp.Expression
    type: str
    source: str | None = None  # the catalog field when the expression is that field as it is
    literal: Any = None  # the Python value when the expression is a literal
    is_literal: bool = False


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: str
    source: str | None = None  # the catalog field behind the column when it is one field as it is


@dataclass(frozen=True)
class CompiledQuery:
    """DuckDB SQL with ``$name`` parameters. Its result columns are aliased ``__o0``, ``__o1``...; their names
    are ``columns`` (so no output name can shadow a table column in the SQL)."""

    sql: str
    params: Mapping[str, Any]
    columns: tuple[OutputColumn, ...]
    table: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass
class _State:
    """Where a pipeline stands while it compiles."""

    current: str
    scope: dict[str, Typed] = field(default_factory=dict)  # ephemeral and stats fields, by name
    catalog_visible: bool = True
    phase: str = "events"  # events (log events) or rows (after stats)
    order: list[tuple[Typed, bool]] | None = None  # the sort in force: (key, descending)
    display: list[Field] | None = None
    shown: list[str] = field(default_factory=list)  # fields/parse/stats output names, in order
    after_dedup: Dedup | None = None


def window_params(window: TimeWindow) -> dict[str, Any]:
    return {"__since": window.since, "__until": window.until, "__since_s": window.since_s,
            "__until_s": window.until_s}


class _Compiler:
    def __init__(self, program: Program, catalog: Catalog, params: dict[str, Any]) -> None:
        self.program = program
        self.catalog = catalog
        self.params = params
        self.ctes: list[tuple[str, exp.Select]] = []
        self._n = 0

    # -- helpers -----------------------------------------------------------------------------------------

    def error(self, message: str, pos: int) -> InsightsQueryError:
        return self.program.error(message, pos)

    def unsupported(self, message: str, pos: int) -> InsightsUnsupportedError:
        return self.program.error(message, pos, unsupported=True)  # type: ignore[return-value]

    def fresh(self, kind: str) -> str:
        self._n += 1
        return f"__{kind}{self._n}"

    def bind(self, value: Any) -> exp.Expression:
        name = f"__p{len(self.params) + 1}"
        while name in self.params:
            name += "_"
        self.params[name] = value
        return exp.Placeholder(this=name)

    def stage(self, st: _State, select: exp.Select) -> None:
        name = f"__s{len(self.ctes)}"
        self.ctes.append((name, select))
        st.current = name

    # -- pipeline ----------------------------------------------------------------------------------------

    def pipeline(self, pipeline: Pipeline, *, window: bool, post_stats: bool) -> tuple[exp.Expression, list[OutputColumn]]:
        st = _State(current=self.catalog.table)
        if post_stats:
            st.phase = "rows"
        if window:
            cond = self.catalog.window(exp.Placeholder(this="__since"), exp.Placeholder(this="__until"),
                                       exp.Placeholder(this="__since_s"), exp.Placeholder(this="__until_s"))
            if cond is not None:
                self.stage(st, exp.select("*").from_(exp.to_table(st.current, quoted=True)).where(cond))
        for command in pipeline.commands:
            if st.after_dedup is not None and not isinstance(command, Limit):
                raise self.error("only limit may follow dedup (a CloudWatch rule)", command.pos)
            getattr(self, f"cmd_{type(command).__name__.lower()}")(st, command)
        return self.final(st, pipeline)

    def relation(self, st: _State) -> exp.Select:
        return exp.select("*").from_(exp.to_table(st.current, quoted=True))

    def cmd_fields(self, st: _State, c: Fields) -> None:
        select = self.relation(st)
        new: dict[str, Typed] = {}
        for item in c.items:
            t = self.expr(st, item.expr)
            name = item.alias or item_name(item.expr)
            if item.alias is None and isinstance(item.expr, Field):
                new[name] = t  # a field shown as it is: no new column needed
            else:
                alias = self.fresh("e")
                select = select.select(exp.alias_(t.sql, alias, quoted=True))
                new[name] = Typed(col(alias), t.type, t.source)
            if name not in st.shown:
                st.shown.append(name)
        if len(select.expressions) > 1:
            self.stage(st, select)
        st.scope.update(new)

    def cmd_display(self, st: _State, c: Display) -> None:
        for f in c.fields:
            self.field(st, f)  # must exist
        st.display = list(c.fields)

    def cmd_filter(self, st: _State, c: Filter) -> None:
        cond = self.boolean(st, c.condition, "filter")
        self.stage(st, self.relation(st).where(cond.sql))

    def cmd_parse(self, st: _State, c: Parse) -> None:
        if st.phase != "events":
            raise self.unsupported("parse after stats is not supported", c.pos)
        source = self.text(self.field(st, c.source))
        if isinstance(c.pattern, Regex):
            regex = _re2(self.program, c.pattern)
        else:
            regex = _glob_regex(c.pattern.value)
        pattern = self.bind(regex)
        matched = fn("regexp_matches", source.sql, pattern)
        select = self.relation(st)
        if isinstance(c.pattern, Regex):
            extracted = fn("regexp_extract", source.sql.copy(), pattern.copy(),
                           exp.Array(expressions=[lit(n) for n in c.names]))
            values = [fn("struct_extract", extracted.copy(), lit(n)) for n in c.names]
        else:
            values = [fn("regexp_extract", source.sql.copy(), pattern.copy(), lit(i + 1)) for i in range(len(c.names))]
        new = {}
        for name, value in zip(c.names, values):
            alias = self.fresh("e")
            select = select.select(exp.alias_(exp.Case(ifs=[exp.If(this=matched.copy(), true=value)]), alias,
                                              quoted=True))
            new[name] = Typed(col(alias), "str")
            if name not in st.shown:
                st.shown.append(name)
        self.stage(st, select)
        st.scope.update(new)

    def cmd_sort(self, st: _State, c: Sort) -> None:
        keys = []
        for k in c.keys:
            t = self.field(st, k.field)
            if t.type == "obj":
                raise self.unsupported("sorting by a whole JSON object is not supported", k.pos)
            keys.append((t, bool(k.desc)))
        st.order = keys

    def default_order(self, st: _State) -> list[tuple[Typed, bool]] | None:
        if st.order is not None:
            return st.order
        if st.phase == "events" and self.catalog.event_time and st.catalog_visible:
            t = self.catalog.resolve(self.catalog.event_time)
            if t is not None:
                return [(Typed(t.sql.copy(), t.type), True)]
        return None

    def cmd_limit(self, st: _State, c: Limit) -> None:
        if not isinstance(c.count, int):
            raise self.error(f"no value for parameter :{c.count.name}", c.count.pos)
        select = self.relation(st)
        order = self.default_order(st)
        if order:
            select = select.order_by(*[exp.Ordered(this=t.sql.copy(), desc=d, nulls_first=False) for t, d in order])
        self.stage(st, select.limit(exp.Literal.number(c.count)))

    def cmd_dedup(self, st: _State, c: Dedup) -> None:
        keys = [self.field(st, f) for f in c.fields]
        order = self.default_order(st)
        if order is None:
            raise self.error("dedup after stats needs a sort before it (which row is kept depends on the order)",
                             c.pos)
        window = exp.Window(this=exp.RowNumber(), partition_by=[k.sql.copy() for k in keys],
                            order=exp.Order(expressions=[exp.Ordered(this=t.sql.copy(), desc=d, nulls_first=False)
                                                         for t, d in order]))
        # Null values are never duplicates: a row with a null key is always kept (CloudWatch's dedup page).
        keep = exp.or_(exp.EQ(this=window, expression=exp.Literal.number(1)),
                       *[exp.Is(this=k.sql.copy(), expression=exp.Null()) for k in keys])
        self.stage(st, self.relation(st).qualify(keep))
        st.order = order
        st.after_dedup = c

    def cmd_stats(self, st: _State, c: Stats) -> None:
        if st.phase != "events":
            raise self.unsupported("a second stats command is not supported", c.pos)
        select = exp.select()
        scope: dict[str, Typed] = {}
        shown: list[str] = []
        for item in c.by:
            for node in walk(item.expr):
                if isinstance(node, Call) and node.name in AGGREGATES:
                    raise self.error(f"{node.spelled or node.name}() cannot group rows; put it before 'by'", node.pos)
            t = self.expr(st, item.expr, in_by=True)
            if t.type == "obj":
                raise self.unsupported("grouping by a whole JSON object is not supported", item.pos)
            name = item.alias or item_name(item.expr)
            alias = self.fresh("k")
            select = select.select(exp.alias_(t.sql, alias, quoted=True))
            self._add(scope, shown, name, Typed(col(alias), t.type, t.source), item.pos)
        for item in c.aggregates:
            if not any(isinstance(n, Call) and n.name in AGGREGATES for n in walk(item.expr)):
                raise self.error("stats needs an aggregation such as count(*), sum(bytes) or avg(bytes)", item.pos)
            t = self.expr(st, item.expr, aggregate=True)
            name = item.alias or item_name(item.expr)
            alias = self.fresh("a")
            select = select.select(exp.alias_(t.sql, alias, quoted=True))
            self._add(scope, shown, name, Typed(col(alias), t.type), item.pos)
        select = select.from_(exp.to_table(st.current, quoted=True))
        if c.by:
            select = select.group_by(*[exp.Literal.number(i + 1) for i in range(len(c.by))])
        self.stage(st, select)
        st.scope, st.shown, st.phase, st.catalog_visible = scope, shown, "rows", False
        st.order, st.display = None, None

    def _add(self, scope: dict[str, Typed], shown: list[str], name: str, t: Typed, pos: int) -> None:
        if name in scope:
            raise self.error(f"stats produces two fields named '{name}'; give one an alias with 'as'", pos)
        scope[name] = t
        shown.append(name)

    def final(self, st: _State, pipeline: Pipeline) -> tuple[exp.Expression, list[OutputColumn]]:
        if st.display is not None:
            names = [f.name for f in st.display]
        elif st.shown:
            names = list(st.shown)
        else:
            names = ["@timestamp", "@message"]
        select = self.relation(st)
        select.set("expressions", [])
        columns = []
        for i, name in enumerate(dict.fromkeys(names)):
            t = self.field(st, Field(pipeline.pos, name))
            value = exp.cast(t.sql.copy(), "INTEGER") if t.type == "bool" else t.sql.copy()
            select = select.select(exp.alias_(value, f"__o{i}", quoted=True))
            columns.append(OutputColumn(name, "int" if t.type == "bool" else t.type, t.source))
        order = st.order if st.order is not None else (self.default_order(st) if st.phase == "events" else None)
        if order:
            select = select.order_by(*[exp.Ordered(this=t.sql.copy(), desc=d, nulls_first=False) for t, d in order])
        return select, columns

    # -- expressions -------------------------------------------------------------------------------------

    def field(self, st: _State, node: Field) -> Typed:
        if node.name in st.scope:
            return st.scope[node.name]
        if st.catalog_visible:
            d = self.catalog.resolve(node.name)
            if d is not None:
                return Typed(d.sql.copy(), d.type, node.name)
            if node.name in _UNAVAILABLE:
                raise self.unsupported(f"{node.name} is not available: {_UNAVAILABLE[node.name]}", node.pos)
            raise self.error(self.catalog.unknown(node.name) + _ephemeral(st), node.pos)
        known = ", ".join(st.scope) or "none"
        raise self.error(f"unknown field '{node.name}': after stats only its output fields exist ({known})", node.pos)

    def boolean(self, st: _State, node: Any, where: str) -> Typed:
        t = self.expr(st, node)
        if t.type != "bool":
            raise self.error(f"{where} needs a condition (a comparison, like, in, ispresent(...)), not a "
                             f"{_TYPE_NAMES[t.type]}", node.pos)
        return t

    def expr(self, st: _State, node: Any, *, aggregate: bool = False, in_by: bool = False) -> Typed:
        if isinstance(node, Field):
            return self.field(st, node)
        if isinstance(node, Literal):
            if isinstance(node.value, str):
                return Typed(self.bind(node.value), "str", literal=node.value, is_literal=True)
            if isinstance(node.value, float):
                return Typed(exp.cast(exp.Literal.number(repr(node.value)), "DOUBLE"), "float", literal=node.value,
                             is_literal=True)
            number = exp.Literal.number(abs(node.value))
            sql = exp.Neg(this=number) if node.value < 0 else number
            return Typed(exp.cast(sql, "BIGINT"), "int", literal=node.value, is_literal=True)
        if isinstance(node, Param):
            raise self.error(f"no value for parameter :{node.name}", node.pos)
        if isinstance(node, Regex):
            raise self.error("a /regular expression/ may only follow 'like', '=~' or 'parse'", node.pos)
        if isinstance(node, Period):
            raise self.error("a time period belongs in bin(...) or datefloor(...)", node.pos)
        if isinstance(node, Unary):
            if node.op == "not":
                inner = self.boolean(st, node.operand, "not")
                return Typed(exp.Not(this=exp.Paren(this=inner.sql)), "bool")
            inner = self.numeric(st, node.operand, aggregate=aggregate)
            return Typed(exp.Neg(this=exp.Paren(this=inner.sql)), inner.type)
        if isinstance(node, Binary):
            if node.op in ("and", "or"):
                left = self.boolean(st, node.left, node.op)
                right = self.boolean(st, node.right, node.op)
                builder = exp.and_ if node.op == "and" else exp.or_
                return Typed(exp.Paren(this=builder(left.sql, right.sql)), "bool")
            if node.op in ("=", "!=", "<", "<=", ">", ">="):
                return self.compare(node.op, self.expr(st, node.left, aggregate=aggregate),
                                    self.expr(st, node.right, aggregate=aggregate), node)
            return self.arithmetic(st, node, aggregate)
        if isinstance(node, Like):
            return self.like(st, node)
        if isinstance(node, In):
            return self.in_(st, node)
        if isinstance(node, Call):
            return self.call(st, node, aggregate=aggregate, in_by=in_by)
        raise self.error(f"unexpected {type(node).__name__}", getattr(node, "pos", 0))

    def numeric(self, st: _State, node: Any, *, aggregate: bool = False) -> Typed:
        return self.as_number(self.expr(st, node, aggregate=aggregate), node)

    def as_number(self, t: Typed, node: Any) -> Typed:
        if t.type in NUMERIC:
            return t
        if t.type == "bool":
            return Typed(exp.cast(t.sql, "INTEGER"), "int")
        if t.type == "str":
            return Typed(exp.TryCast(this=t.sql, to=exp.DataType.build("DOUBLE")), "float")
        raise self.error(f"expected a number here, not a {_TYPE_NAMES[t.type]}", node.pos)

    def text(self, t: Typed) -> Typed:
        if t.type in ("str", "obj"):
            return t
        if t.type == "bool":
            return Typed(exp.cast(exp.cast(t.sql, "INTEGER"), "VARCHAR"), "str")
        return Typed(exp.cast(t.sql, "VARCHAR"), "str")

    def arithmetic(self, st: _State, node: Binary, aggregate: bool) -> Typed:
        left = self.numeric(st, node.left, aggregate=aggregate)
        right = self.numeric(st, node.right, aggregate=aggregate)
        a, b = exp.Paren(this=left.sql), exp.Paren(this=right.sql)
        both_int = left.type == right.type == "int"
        if node.op == "+":
            return Typed(exp.Add(this=a, expression=b), "int" if both_int else "float")
        if node.op == "-":
            return Typed(exp.Sub(this=a, expression=b), "int" if both_int else "float")
        if node.op == "*":
            return Typed(exp.Mul(this=a, expression=b), "int" if both_int else "float")
        # Division by zero gives no value (NULL), not an error that would fail the whole query.
        divisor = exp.Nullif(this=b, expression=exp.Literal.number(0))
        if node.op == "/":
            return Typed(exp.Div(this=exp.cast(a, "DOUBLE"), expression=divisor), "float")
        if node.op == "%":
            return Typed(exp.Mod(this=a, expression=divisor), "int" if both_int else "float")
        return Typed(exp.Pow(this=exp.cast(a, "DOUBLE"), expression=b), "float")

    def compare(self, op: str, a: Typed, b: Typed, node: Any) -> Typed:
        ops = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
        if "obj" in (a.type, b.type):
            raise self.unsupported("comparing a whole JSON object is not supported; compare one of its fields", node.pos)
        if a.type == "bool" and b.type in NUMERIC:
            a = Typed(exp.cast(a.sql, "INTEGER"), "int")
        if b.type == "bool" and a.type in NUMERIC:
            b = Typed(exp.cast(b.sql, "INTEGER"), "int")
        if a.type in NUMERIC and b.type == "str":
            a, b = a, self._number_side(b, a)
        elif b.type in NUMERIC and a.type == "str":
            a = self._number_side(a, b)
        if {a.type, b.type} <= set(NUMERIC) or a.type == b.type:
            return Typed(ops[op](this=exp.Paren(this=a.sql), expression=exp.Paren(this=b.sql)), "bool")
        raise self.error(f"cannot compare a {_TYPE_NAMES[a.type]} with a {_TYPE_NAMES[b.type]}"
                         + ("; use fromMillis(...) for a time" if "ts" in (a.type, b.type) else ""), node.pos)

    def _number_side(self, s: Typed, number: Typed) -> Typed:
        """The string side of a number-vs-string comparison: a numeric literal becomes that number, another
        literal stays text (and the number becomes text), a field is read as a number."""
        if s.is_literal:
            try:
                value = float(s.literal)
            except ValueError:
                return s
            return Typed(exp.cast(exp.Literal.number(repr(value)), "DOUBLE"), "float")
        return Typed(exp.TryCast(this=s.sql, to=exp.DataType.build("DOUBLE")), "float")

    def like(self, st: _State, node: Like) -> Typed:
        operand = self.text(self.expr(st, node.operand))
        if operand.type == "obj":
            raise self.unsupported("matching a whole JSON object is not supported", node.pos)
        if isinstance(node.pattern, Regex):
            cond = fn("regexp_matches", operand.sql, self.bind(_re2(self.program, node.pattern)))
        else:
            # like / =~ with a string: a case-sensitive substring match
            # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html, "Matches and regular
            # expressions in the filter command").
            cond = fn("contains", operand.sql, self.bind(node.pattern.value))
        return Typed(exp.Not(this=exp.Paren(this=cond)) if node.negated else cond, "bool")

    def in_(self, st: _State, node: In) -> Typed:
        if isinstance(node.items, Param):
            raise self.error(f"no value for parameter :{node.items.name}", node.items.pos)
        operand = self.expr(st, node.operand)
        parts = [self.compare("=", operand, self.expr(st, item), item).sql for item in node.items]
        cond = exp.Paren(this=exp.or_(*parts)) if len(parts) > 1 else parts[0]
        return Typed(exp.Not(this=cond) if node.negated else cond, "bool")

    # -- functions ---------------------------------------------------------------------------------------

    def call(self, st: _State, node: Call, *, aggregate: bool, in_by: bool) -> Typed:
        name = node.name
        if name in AGGREGATES:
            if not aggregate:
                raise self.error(f"{node.spelled}() is an aggregation: it belongs in stats", node.pos)
            return self.aggregate(st, node)
        if name == "bin":
            if not in_by:
                raise self.error("bin() belongs after 'by' in stats", node.pos)
            self._arity(node, 1)
            ts = self._event_time(st, node)
            return self._floor_time(ts, self._period(node.args[0]))
        handler: Callable[[_State, Call, bool], Typed] | None = getattr(self, f"fn_{name}", None)
        if handler is None:
            if name in _KNOWN_UNSUPPORTED:
                raise self.unsupported(f"the function {node.spelled}() is not supported by this tool", node.pos)
            close = difflib.get_close_matches(name, [f.lower() for f in _FUNCTIONS], n=1)
            hint = f" (did you mean {_FUNCTIONS[[f.lower() for f in _FUNCTIONS].index(close[0])]}()?)" if close else ""
            raise self.error(f"unknown function {node.spelled}(){hint}", node.pos)
        return handler(st, node, aggregate)

    def _arity(self, node: Call, *counts: int) -> None:
        if len(node.args) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise self.error(f"{node.spelled}() takes {want} argument{'s' if counts != (1,) else ''}, "
                             f"got {len(node.args)}", node.pos)

    def _args(self, st: _State, node: Call, aggregate: bool) -> list[Typed]:
        return [self.expr(st, a, aggregate=aggregate) for a in node.args]

    def _period(self, node: Any) -> int:
        if not isinstance(node, Period):
            raise self.error("expected a time period such as 5m or 1h", node.pos)
        if node.unit not in _PERIOD_MS:
            raise self.unsupported(f"periods in {node.unit} are not supported (CloudWatch does not document how it "
                                   "aligns weeks, months, quarters and years); use ms, s, m, h or d", node.pos)
        if node.count < 1:
            raise self.error("a period must be 1 or more", node.pos)
        return node.count * _PERIOD_MS[node.unit]

    def _event_time(self, st: _State, node: Call) -> Typed:
        if not st.catalog_visible or self.catalog.event_time is None:
            raise self.error(f"{node.spelled}() needs @timestamp, which this row set does not have", node.pos)
        d = self.catalog.resolve(self.catalog.event_time)
        assert d is not None
        return Typed(d.sql.copy(), d.type)

    def _floor_time(self, ts: Typed, ms: int) -> Typed:
        # Epoch arithmetic, so the result does not depend on the session's time zone.
        us = fn("epoch_us", ts.sql)
        size = exp.Literal.number(ms * 1000)
        floored = exp.Sub(this=us, expression=exp.Paren(this=exp.Mod(
            this=exp.Paren(this=exp.Add(this=exp.Paren(this=exp.Mod(this=us.copy(), expression=size)),
                                        expression=size.copy())), expression=size.copy())))
        return Typed(fn("make_timestamptz", floored), "ts")

    def fn_ispresent(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        if not isinstance(node.args[0], Field):
            raise self.error("ispresent() takes a field name", node.args[0].pos)
        t = self.expr(st, node.args[0])
        return Typed(exp.Not(this=exp.Is(this=t.sql, expression=exp.Null())), "bool")

    def fn_isblank(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.text(self.expr(st, node.args[0]))
        return Typed(exp.Paren(this=exp.or_(exp.Is(this=t.sql, expression=exp.Null()),
                                            fn("regexp_full_match", t.sql.copy(), lit(r"\s*")))), "bool")

    def _subnet(self, st: _State, node: Call, v4_only: bool) -> Typed:
        self._arity(node, 2)
        ip, cidr = (self.text(t) for t in self._args(st, node, False))
        inside = fn("cidr_contains", cidr.sql, ip.sql)
        if v4_only:
            # An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is not an IPv4 address here, though our
            # cidr_contains judges it by its IPv4 part.
            inside = exp.and_(inside, exp.Not(this=fn("contains", ip.sql.copy(), lit(":"))),
                              exp.Not(this=fn("contains", cidr.sql.copy(), lit(":"))))
        return Typed(exp.Coalesce(this=exp.Paren(this=inside), expressions=[exp.false()]), "bool")

    def fn_isipv4insubnet(self, st: _State, node: Call, aggregate: bool) -> Typed:
        return self._subnet(st, node, True)

    def fn_isipinsubnet(self, st: _State, node: Call, aggregate: bool) -> Typed:
        return self._subnet(st, node, False)

    def fn_strlen(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.text(self.expr(st, node.args[0], aggregate=aggregate))
        return Typed(exp.cast(fn("length", t.sql), "BIGINT"), "int")  # code points, as CloudWatch counts

    def fn_toupper(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        return Typed(fn("upper", self.text(self.expr(st, node.args[0], aggregate=aggregate)).sql), "str")

    def fn_tolower(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        return Typed(fn("lower", self.text(self.expr(st, node.args[0], aggregate=aggregate)).sql), "str")

    def fn_concat(self, st: _State, node: Call, aggregate: bool) -> Typed:
        if not node.args:
            raise self.error("concat() takes one or more arguments", node.pos)
        parts = [self.text(t).sql for t in self._args(st, node, aggregate)]
        return Typed(fn("concat", *parts), "str")

    def fn_coalesce(self, st: _State, node: Call, aggregate: bool) -> Typed:
        if not node.args:
            raise self.error("coalesce() takes one or more arguments", node.pos)
        args = self._args(st, node, aggregate)
        types = {a.type for a in args}
        if types <= set(NUMERIC):
            kind = "int" if types == {"int"} else "float"
            sqls = [a.sql for a in args]
        elif len(types) == 1:
            kind = args[0].type
            sqls = [a.sql for a in args]
        else:
            kind = "str"
            sqls = [self.text(a).sql for a in args]
        return Typed(exp.Coalesce(this=sqls[0], expressions=sqls[1:]), kind)

    def fn_abs(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.numeric(st, node.args[0], aggregate=aggregate)
        return Typed(fn("abs", t.sql), t.type)

    def _rounding(self, name: str, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.numeric(st, node.args[0], aggregate=aggregate)
        if t.type == "int":
            return t  # a whole number is its own floor and ceiling
        return Typed(fn(name, t.sql), "float")

    def fn_floor(self, st: _State, node: Call, aggregate: bool) -> Typed:
        return self._rounding("floor", st, node, aggregate)

    def fn_ceil(self, st: _State, node: Call, aggregate: bool) -> Typed:
        return self._rounding("ceil", st, node, aggregate)

    def fn_frommillis(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.numeric(st, node.args[0], aggregate=aggregate)
        return Typed(fn("make_timestamptz", exp.Mul(this=exp.cast(t.sql, "BIGINT"), expression=exp.Literal.number(1000))),
                     "ts")

    def fn_tomillis(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 1)
        t = self.expr(st, node.args[0], aggregate=aggregate)
        if t.type != "ts":
            raise self.error("toMillis() takes a timestamp such as @timestamp", node.args[0].pos)
        return Typed(fn("epoch_ms", t.sql), "int")

    def fn_datefloor(self, st: _State, node: Call, aggregate: bool) -> Typed:
        self._arity(node, 2)
        t = self.expr(st, node.args[0], aggregate=aggregate)
        if t.type != "ts":
            raise self.error("datefloor() takes a timestamp such as @timestamp", node.args[0].pos)
        return self._floor_time(t, self._period(node.args[1]))

    # -- aggregations --------------------------------------------------------------------------------------

    def aggregate(self, st: _State, node: Call) -> Typed:
        name = node.name
        if name == "count":
            if node.star:
                return Typed(exp.Count(this=exp.Star()), "int")
            self._arity(node, 1)
            return Typed(exp.Count(this=self.expr(st, node.args[0]).sql), "int")
        if node.star:
            raise self.error(f"only count takes '*', not {node.spelled}()", node.pos)
        if name == "count_distinct":
            self._arity(node, 1)
            t = self.expr(st, node.args[0])
            if t.type == "obj":
                raise self.unsupported("count_distinct of a whole JSON object is not supported", node.pos)
            return Typed(exp.Count(this=exp.Distinct(expressions=[t.sql])), "int")
        if name in ("sum", "avg"):
            self._arity(node, 1)
            t = self.numeric(st, node.args[0])
            if name == "avg":
                return Typed(exp.Avg(this=t.sql), "float")
            total: exp.Expression = exp.Sum(this=t.sql)
            if t.type == "int":  # BIGINT as query.sql's sum on Athena (DuckDB's own sum of integers is a HUGEINT)
                total = exp.cast(total, "BIGINT")
            return Typed(total, t.type)
        if name in ("min", "max"):
            self._arity(node, 1)
            t = self.expr(st, node.args[0])
            if t.type in ("obj", "bool"):
                raise self.unsupported(f"{name}() of a {_TYPE_NAMES[t.type]} is not supported", node.pos)
            return Typed((exp.Min if name == "min" else exp.Max)(this=t.sql), t.type)
        if name == "pct":
            self._arity(node, 2)
            t = self.numeric(st, node.args[0])
            p = node.args[1]
            if not (isinstance(p, Literal) and isinstance(p.value, (int, float)) and 0 <= p.value <= 100):
                raise self.error("pct() takes a percentile from 0 to 100 as its second argument", p.pos)
            # Exact, by nearest rank: the smallest value with at least ceil(n * p / 100) values at or below it
            # (DuckDB's quantile_disc). CloudWatch's pct is approximate.
            return Typed(fn("quantile_disc", t.sql, exp.cast(exp.Literal.number(repr(p.value / 100)), "DOUBLE")),
                         t.type)
        # earliest / latest: the value from the event with the earliest / latest @timestamp.
        self._arity(node, 1)
        t = self.expr(st, node.args[0])
        if t.type == "obj":
            raise self.unsupported(f"{name}() of a whole JSON object is not supported", node.pos)
        ts = self._event_time(st, node)
        return Typed(fn("arg_min" if name == "earliest" else "arg_max", t.sql, ts.sql), t.type)


_FUNCTIONS = ("isIpv4InSubnet", "isIpInSubnet", "ispresent", "isblank", "strlen", "toupper", "tolower", "concat",
              "coalesce", "abs", "floor", "ceil", "fromMillis", "toMillis", "datefloor", "bin", "count",
              "count_distinct", "sum", "avg", "min", "max", "pct", "earliest", "latest")
_TYPE_NAMES = {"int": "number", "float": "number", "str": "string", "bool": "condition", "ts": "timestamp",
               "obj": "JSON object"}


def _ephemeral(st: _State) -> str:
    return f"; fields defined so far: {', '.join(st.scope)}" if st.scope else ""


def item_name(e: Any) -> str:
    """The output name of an item without ``as``: a field's own name, else the expression's text."""
    return e.name if isinstance(e, Field) else render_expr(e)


def _glob_regex(glob: str) -> str:
    """A parse glob as a regular expression: each '*' captures as little as it can, a trailing one the rest."""
    pieces = glob.split("*")
    out = re.escape(pieces[0])
    for i, piece in enumerate(pieces[1:]):
        last = i == len(pieces) - 2
        out += ("(.*)" if last and piece == "" else "(.*?)") + re.escape(piece)
    return out


def _re2(program: Program, node: Regex) -> str:
    """A Logs Insights regex for DuckDB's RE2: named groups as (?P<name>...); features RE2 lacks are refused."""
    m = _UNSAFE_REGEX.search(node.pattern)
    if m:
        raise program.error("lookaround, backreferences, atomic groups and possessive quantifiers are not supported "
                            "in regular expressions here (RE2)", node.pos + 1 + m.start(), unsupported=True)
    translated = re.sub(r"\(\?<(?=[A-Za-z_@])", "(?P<", node.pattern)
    problem = _re2_error(translated)
    if problem:
        raise program.error(f"not a valid regular expression: {problem}", node.pos)
    return translated


_RE2 = threading.local()


def _re2_error(pattern: str) -> str | None:
    """RE2's complaint about a pattern, or None; asked of DuckDB itself, which is what will run it."""
    con = getattr(_RE2, "con", None)
    if con is None:
        con = _RE2.con = connect()
    try:
        con.execute("SELECT regexp_matches('', $p)", {"p": pattern})
    except duckdb.Error as exc:
        return str(exc).split("Error: ", 1)[-1]
    return None


def compile_program(program: Program, catalog: Catalog, *, window: TimeWindow | None = None,
                    post_stats: bool = False) -> CompiledQuery:
    """Compile a (bound) program. With ``window``, rows are kept when their start (flow logs) or event time
    (CloudTrail) lies in it, half-open; its values are bound parameters. Parts joined by ``union all`` must
    produce a subset of the first part's columns."""
    params: dict[str, Any] = dict(window_params(window)) if window is not None else {}
    compiler = _Compiler(program, catalog, params)
    selects = []
    first: list[OutputColumn] = []
    for i, part in enumerate(program.parts):
        select, columns = compiler.pipeline(part, window=window is not None, post_stats=post_stats)
        if i == 0:
            first = columns
        else:
            index = {c.name: j for j, c in enumerate(first)}
            extra = [c.name for c in columns if c.name not in index]
            if extra:
                raise program.error(f"this query returns {', '.join(extra)}, which the first query of the union "
                                    "does not", part.pos)
            # Re-alias to the first part's positions, so that UNION ALL BY NAME lines the columns up.
            for k, c in enumerate(columns):
                select.expressions[k].set("alias", exp.to_identifier(f"__o{index[c.name]}", quoted=True))
        selects.append(select)
    if len(selects) == 1:
        body: exp.Expression = selects[0]
    else:
        # UNION ALL BY NAME: a column a later part lacks is NULL there.
        body = exp.select(*[exp.column(f"__o{j}", quoted=True) for j in range(len(first))]).from_(
            exp.Subquery(this=_union_by_name(selects), alias=exp.TableAlias(this=exp.to_identifier("__u"))))
    sql = body.sql(dialect="duckdb")
    if compiler.ctes:
        ctes = ", ".join(f"{exp.to_identifier(name, quoted=True).sql('duckdb')} AS ({s.sql(dialect='duckdb')})"
                         for name, s in compiler.ctes)
        sql = f"WITH {ctes} {sql}"
    used = set(re.findall(r"\$(\w+)", sql))
    return CompiledQuery(sql=sql, params={k: v for k, v in params.items() if k in used}, columns=tuple(first),
                         table=catalog.table)


def _union_by_name(selects: Sequence[exp.Select]) -> exp.Expression:
    parts = [exp.select("*").from_(exp.Subquery(this=s, alias=exp.TableAlias(this=exp.to_identifier(f"__u{i}"))))
             for i, s in enumerate(selects)]
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.Union(this=union, expression=part, distinct=False, by_name=True)
    return union
