"""Trino on DuckDB: where sqlglot's translation would give a different answer, the AST is fixed up here, and what
cannot be matched exactly is refused with the reason and the Trino alternative.

The rules come from Trino's documentation and function tests; ``tests/trino/conformance.yaml`` holds one row per
behaviour, with the page it comes from, and runs each through the local engine. ``docs/trino.md`` lists them for
users. The fix-ups work on types (:mod:`auditor.engines.trino_types`): ``7 / 2`` divides integers and truncates,
``CAST(x AS VARCHAR)`` of a JSON value takes the JSON string's value, and so on. Several call DuckDB macros with
Trino's semantics (:mod:`auditor.engines.trino_macros`).

The nodes are rewritten children first, so a fix-up sees its arguments already fixed and still typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from sqlglot import exp
from sqlglot.dialects.trino import Trino

from auditor.engines.trino_types import (
    Catalog,
    annotate,
    is_decimal,
    is_floating,
    is_integer,
    is_json,
    is_text,
    is_unknown,
    type_of,
)

T = exp.DataType.Type


class AthenaTrino(Trino):
    """Trino as Athena runs it, read so that nothing is lost: the format strings of ``date_format``,
    ``date_parse`` and ``parse_datetime`` are kept as written (sqlglot's Trino reader rewrites them into its own
    notation, losing ``%%`` and the specifiers Trino refuses), for :func:`mysql_to_strftime` to translate.

    Subscripts keep the index as written too: sqlglot's reader makes ``x[2]`` 0-based when it guesses that ``x`` is
    an array, and its writers add the offset back from the types known then, which the fix-ups change. Here no
    index is moved; :func:`keep_indexes` marks each subscript as 1-based, as Trino's and DuckDB's are."""

    INDEX_OFFSET = 0

    class Parser(Trino.Parser):
        FUNCTIONS = {
            **Trino.Parser.FUNCTIONS,
            **{name: (lambda args, name=name: exp.Anonymous(this=name.lower(), expressions=args))
               for name in ("DATE_FORMAT", "DATE_PARSE", "PARSE_DATETIME", "FORMAT_DATETIME")},
        }


def keep_indexes(tree: exp.Expression) -> exp.Expression:
    """Mark every subscript of a tree read with :class:`AthenaTrino` as holding a 1-based index (as written)."""
    for bracket in tree.find_all(exp.Bracket):
        bracket.set("offset", 1)
    return tree


class Refusal(Exception):
    """A construct the local engine cannot run with Trino's result. ``start`` is its offset in the query text."""

    def __init__(self, node: exp.Expression, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.start = next((n.meta["start"] for n in node.walk() if "start" in n.meta), None)


def refuse(node: exp.Expression, message: str) -> NoReturn:
    raise Refusal(node, message)


def trino_sql(node: exp.Expression) -> str:
    return node.sql(dialect=AthenaTrino)


def apply(tree: exp.Expression, catalog: Catalog, params: Mapping[str, Any] | None = None) -> exp.Expression:
    """The query translated for DuckDB: typed, its output columns named as Athena names them, every node fixed up
    (children first). Raises :class:`Refusal`."""
    tree = tree.copy()
    annotate(tree, catalog, params)
    name_output_columns(tree)
    outer = outer_select(tree)
    for node in reversed(list(tree.walk())):
        fix = _FIXUPS.get(type(node))
        if fix is None:
            continue
        new = fix(node, outer)
        if new is not node:
            if getattr(new, "type", None) is None and getattr(node, "type", None) is not None:
                new.type = node.type
            if node is tree:
                tree = new
            else:
                node.replace(new)
    # Last, so that a refusal above names the query as written.
    for node in list(tree.find_all(exp.Sum)):
        node.replace(_sum_as_bigint(node))
    return tree


# --- output column names ---------------------------------------------------------------------------------------


def outer_select(tree: exp.Expression) -> exp.Select | None:
    """The SELECT that names a query's output columns: the query's own, or the first of a UNION."""
    node = tree
    while isinstance(node, (exp.Union, exp.Subquery)):
        node = node.left if isinstance(node, exp.Union) else node.this
    return node if isinstance(node, exp.Select) else None


def name_output_columns(tree: exp.Expression) -> None:
    """Name the output columns as Athena does: lower case, and ``_col<i>`` for an expression without an alias,
    ``i`` being its position (https://trino.io/docs/current/sql/select.html#group-by-clause shows ``_col1``).
    The first SELECT of a UNION names the columns."""
    select = outer_select(tree)
    if select is None:
        return
    star_before = False
    for i, projection in enumerate(list(select.expressions)):
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            star_before = True
        elif isinstance(projection, exp.Alias):
            if projection.alias != projection.alias.lower():
                projection.set("alias", exp.to_identifier(projection.alias.lower()))
        elif isinstance(projection, (exp.Column, exp.Dot)):
            name = projection.output_name
            if name and name != name.lower():
                projection.replace(exp.alias_(projection.copy(), name.lower()))
        elif star_before:
            refuse(projection, f"{trino_sql(projection)} has no name and follows a *: Athena names it _col<position>, "
                               "which the local engine cannot count here; give it a name (AS ...)")
        else:
            projection.replace(exp.alias_(projection.copy(), f"_col{i}"))


# --- arithmetic -------------------------------------------------------------------------------------------------


def _fix_div(node: exp.Div, outer: Any) -> exp.Expression:
    # https://trino.io/docs/current/functions/math.html#mathematical-operators: integer division truncates.
    left, right = type_of(node.left), type_of(node.right)
    if left.is_type(T.NULL) or right.is_type(T.NULL):
        return exp.Div(this=node.left, expression=node.right)  # NULL whatever the other operand is
    if is_integer(left) and is_integer(right):
        return exp.IntDiv(this=node.left, expression=node.right)
    if is_floating(left) or is_floating(right):
        return exp.Div(this=node.left, expression=node.right)
    if is_decimal(left) or is_decimal(right):
        refuse(node, f"{trino_sql(node)} divides DECIMAL values: Athena keeps the larger scale of the two and rounds "
                     "(1.0 / 3 = 0.3), the local engine would divide in DOUBLE; write a DOUBLE (1.0e0 / 3, "
                     "CAST(x AS DOUBLE)) or divide integers")
    refuse(node, f"{trino_sql(node)}: the local engine cannot tell whether this divides integers (Athena truncates: "
                 "7 / 2 = 3) or not; CAST an operand: CAST(x AS DOUBLE) / y, or CAST(x AS BIGINT) / CAST(y AS BIGINT)")


def _sum_as_bigint(node: exp.Sum) -> exp.Expression:
    # https://trino.io/docs/current/functions/aggregate.html#sum: the sum of integers is a BIGINT on Trino (an
    # overflow fails), a HUGEINT on DuckDB: the cast gives the column Athena's type (and fails where Athena would).
    # A windowed sum keeps DuckDB's type: the cast cannot sit between the aggregate and its OVER.
    if isinstance(node.parent, exp.Window) or not is_integer(type_of(node.this)):
        return node
    return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))


# --- casts -----------------------------------------------------------------------------------------------------


def _macro(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _cast(value: exp.Expression, to: exp.DataType, strict: bool) -> exp.Expression:
    return exp.Cast(this=value, to=to.copy()) if strict else exp.TryCast(this=value, to=to.copy())


_INTEGER_TARGETS = (T.BIGINT, T.INT, T.SMALLINT, T.TINYINT)


def _scalar_cast(kind: str, value: exp.Expression, to: exp.DataType, strict: bool) -> exp.Expression | None:
    """``CAST(value AS to)`` of a ``json`` or ``varchar`` value to a number or boolean through the
    ``trino_[try_]<kind>_*`` macros; None for another target."""
    prefix = f"{'trino_' if strict else 'trino_try_'}{kind}_"
    for target, macro in ((T.BIGINT, "bigint"), (T.DOUBLE, "double"), (T.BOOLEAN, "boolean")):
        if to.is_type(target):
            return _macro(prefix + macro, value)
    if to.is_type(*_INTEGER_TARGETS):
        return _cast(_macro(prefix + "bigint", value), to, strict)
    if to.is_type(T.FLOAT):
        return _cast(_macro(prefix + "double", value), to, strict)
    return None


def _json_leaves(to: exp.DataType) -> bool:
    if to.is_type(T.JSON):
        return True
    if to.is_type(T.ARRAY) and to.expressions:
        return _json_leaves(to.expressions[0])
    if to.is_type(T.MAP) and len(to.expressions) == 2:
        return to.expressions[0].is_type(*exp.DataType.TEXT_TYPES) and _json_leaves(to.expressions[1])
    return False


def _from_json(value: exp.Expression, to: exp.DataType, strict: bool, depth: int = 0) -> exp.Expression:
    """``CAST(value AS to)`` of a JSON value with Trino's rules (JsonOperators, JsonUtil)."""
    p = "trino_" if strict else "trino_try_"
    if _json_leaves(to):
        # ARRAY(JSON), MAP(VARCHAR, JSON) and their nestings: DuckDB splits the JSON as Trino does
        return value if to.is_type(T.JSON) else _cast(value, to, strict)
    if to.is_type(*exp.DataType.TEXT_TYPES):
        return _macro(p + "json_varchar", value)
    scalar = _scalar_cast("json", value, to, strict)
    if scalar is not None:
        return scalar
    var = exp.to_identifier(f"_e{depth}")
    element = exp.column(var)
    if to.is_type(T.ARRAY) and to.expressions:
        inner = _from_json(element, to.expressions[0], strict, depth + 1)
        items = _cast(value, exp.DataType.build("ARRAY(JSON)", dialect="trino"), strict)
        return _macro("list_transform", items, exp.Lambda(this=inner, expressions=[var]))
    if to.is_type(T.MAP) and len(to.expressions) == 2 and to.expressions[0].is_type(*exp.DataType.TEXT_TYPES):
        entries = _cast(value, exp.DataType.build("MAP(VARCHAR, JSON)", dialect="trino"), strict)
        inner = _from_json(exp.Dot(this=element, expression=exp.to_identifier("value")), to.expressions[1], strict,
                           depth + 1)
        pair = exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.to_identifier("key"), expression=exp.Dot(this=element.copy(),
                                                                              expression=exp.to_identifier("key"))),
            exp.PropertyEQ(this=exp.to_identifier("value"), expression=inner)])
        return _macro("map_from_entries", _macro("list_transform", _macro("map_entries", entries),
                                                 exp.Lambda(this=pair, expressions=[var])))
    refuse(value, f"CAST(JSON AS {to.sql('trino')}): the local engine translates JSON casts to VARCHAR, BIGINT, "
                  "INTEGER, SMALLINT, TINYINT, DOUBLE, REAL, BOOLEAN and ARRAY or MAP(VARCHAR, ...) of them")


_UTC_ZONES = re.compile(r"(?i)^\s*(utc|z|gmt|etc/utc|[+-]00(:?00)?)\s*$")
_ZONED_LITERAL = re.compile(r"(?i)^\s*\d{4}-\d\d-\d\d[ T][0-9:.]+\s*(?P<zone>\S.*)$")


def _fix_cast(node: exp.Cast, outer: Any) -> exp.Expression:
    strict = not isinstance(node, exp.TryCast)
    value, to, source = node.this, node.to, type_of(node.this)
    if to.sql(dialect="trino").upper() == "IPADDRESS":
        if isinstance(node.parent, exp.ArrayContains) and node.arg_key == "expression":
            return node  # contains(<cidr>, CAST(<addr> AS IPADDRESS)): _fix_cidr_contains, next
        if isinstance(node.parent, exp.Anonymous) and node.parent.name.lower() == "is_subnet_of":
            return node  # refused as a whole, with its alternative
        refuse(node, "CAST(... AS IPADDRESS) is supported only inside contains(<cidr>, CAST(<addr> AS IPADDRESS)) "
                     f"for the embedded engine; found: {trino_sql(node)}")
    if is_json(source):
        return _from_json(value, to, strict)
    if is_floating(source) and to.is_type(*_INTEGER_TARGETS):
        # DoubleOperators.castToLong rounds half away from zero (HALF_UP); DuckDB rounds half to even.
        return _cast(exp.Anonymous(this="round", expressions=[value]), to, strict)
    if is_floating(source) and to.is_type(*exp.DataType.TEXT_TYPES):
        refuse(node, f"{trino_sql(node)}: Athena prints a DOUBLE in scientific notation (1.5E0, per the SQL "
                     "standard since Trino 372) and the local engine cannot; CAST it to DECIMAL(p, s) first, or use "
                     "date_format/format_number for display")
    if source.is_type(*exp.DataType.TEMPORAL_TYPES) and not source.is_type(T.DATE) \
            and to.is_type(*exp.DataType.TEXT_TYPES):
        refuse(node, f"{trino_sql(node)}: Athena prints timestamps with the type's precision and zone "
                     "(2020-05-11 11:15:05.055 UTC), the local engine differently; use date_format(x, "
                     "'%Y-%m-%d %H:%i:%s') or to_unixtime(x)")
    if is_text(source) and to.is_type(T.JSON):
        # CAST(string AS JSON) is the JSON string of the text in Trino, never a parse (json_parse does that)
        return _macro("to_json", value)
    if is_text(source) or isinstance(value, exp.Literal) and value.is_string:
        if isinstance(value, exp.Literal) and to.is_type(T.TIMESTAMPTZ):
            zoned = _ZONED_LITERAL.match(value.this)
            if zoned and not _UTC_ZONES.match(zoned.group("zone")):
                refuse(node, f"{trino_sql(node)}: Athena keeps the time zone {zoned.group('zone')} on the value and "
                             "computes fields and formats in it; the local engine holds UTC only. Write the "
                             "instant in UTC (TIMESTAMP '... UTC')")
        scalar = _scalar_cast("varchar", value, to, strict)
        if scalar is not None:
            return scalar
    return node


# --- subscripts --------------------------------------------------------------------------------------------------


def _fix_bracket(node: exp.Bracket, outer: Any) -> exp.Expression:
    # https://trino.io/docs/current/functions/array.html#subscript-operator and
    # https://trino.io/docs/current/functions/map.html#subscript-operator: a subscript fails where element_at
    # gives NULL.
    container = type_of(node.this)
    if len(node.expressions) != 1 or isinstance(node.expressions[0], exp.Slice):
        return node
    index = node.expressions[0]
    safe = bool(node.args.get("safe"))
    if container.is_type(T.ARRAY):
        return _macro("trino_element_at" if safe else "trino_array_at", node.this, index)
    if container.is_type(T.MAP):
        return node if safe else _macro("trino_map_at", node.this, index)
    if is_json(container):
        refuse(node, f"{trino_sql(node)}: Athena has no subscript on JSON; CAST it to MAP(VARCHAR, JSON) or "
                     "ARRAY(JSON) first, or use json_extract")
    if is_text(container):
        refuse(node, f"{trino_sql(node)}: Athena has no subscript on VARCHAR (DuckDB would take characters); use "
                     "substr")
    return node


# --- time ---------------------------------------------------------------------------------------------------------

_DATE_UNITS = ("day", "week", "month", "quarter", "year")
_UNITS = ("millisecond", "second", "minute", "hour", *_DATE_UNITS)


def _unit(node: exp.Expression, unit: exp.Expression | None, function: str) -> str:
    text = unit.name.lower() if isinstance(unit, (exp.Var, exp.Literal, exp.Identifier)) else None
    if text not in _UNITS:
        refuse(node, f"{function}: the unit must be one of {', '.join(_UNITS)} written as a string literal "
                     f"(https://trino.io/docs/current/functions/datetime.html#interval-functions)")
    return text


def _fix_date_diff(node: exp.DateDiff, outer: Any) -> exp.Expression:
    # Trino counts whole units elapsed (Joda's getDifferenceAsLong): 11:45 to 18:02 is 6 hours. DuckDB's
    # date_diff counts unit boundaries crossed (7); its date_sub counts whole units, as Trino does.
    unit = _unit(node, node.args.get("unit"), "date_diff")
    start, end = node.expression, node.this
    if unit not in _DATE_UNITS and type_of(start).is_type(T.DATE) and type_of(end).is_type(T.DATE):
        refuse(node, f"date_diff('{unit}', DATE, DATE): Athena refuses a time unit on dates ('{unit}' is not a valid "
                     "DATE field)")
    return exp.Anonymous(this="date_sub", expressions=[exp.Literal.string(unit), start, end])


def _fix_date_add(node: exp.DateAdd, outer: Any) -> exp.Expression:
    unit = _unit(node, node.args.get("unit"), "date_add")
    value, target = node.expression, node.this
    is_date = type_of(target).is_type(T.DATE)
    if is_date and unit not in _DATE_UNITS:
        refuse(node, f"date_add('{unit}', ..., DATE): Athena refuses a time unit on a date ('{unit}' is not a valid "
                     "DATE field)")
    amount = value if isinstance(value, exp.Literal) else exp.paren(value, copy=False)
    added = exp.Add(this=target, expression=exp.Interval(this=amount, unit=exp.var(unit.upper())))
    # A date plus days stays a DATE in Trino; in DuckDB it becomes a TIMESTAMP.
    return exp.cast(added, exp.DataType.build("DATE")) if is_date else added


def _fix_date_trunc(node: exp.TimestampTrunc, outer: Any) -> exp.Expression:
    # DuckDB's date_trunc keeps a timestamp's type (with or without zone) but turns a DATE into a TIMESTAMP, so only
    # a DATE needs sqlglot's cast back to the input type.
    if node.args.get("input_type_preserved") and not type_of(node.this).is_type(T.DATE):
        node.set("input_type_preserved", None)
    return node


def _is_utc(zone: exp.Expression | None) -> bool:
    return isinstance(zone, exp.Literal) and zone.is_string and bool(_UTC_ZONES.match(zone.this))


def _fix_from_unixtime(node: exp.UnixToTime, outer: Any) -> exp.Expression:
    zone = node.args.get("zone")
    if node.args.get("hours") is not None or node.args.get("minutes") is not None or (
            zone is not None and not _is_utc(zone)):
        refuse(node, f"{trino_sql(node)}: Athena keeps that time zone on the value and computes fields and "
                     "formats in it; the local engine holds UTC only. Use from_unixtime(x), which is UTC")
    if zone is not None:
        node = exp.UnixToTime(this=node.this)
    if is_integer(type_of(node.this)):
        return node
    return _macro("trino_from_unixtime", node.this)


# A timestamp with time zone used here is only compared or counted as an instant, where its zone does not matter.
_INSTANT_PARENTS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In, exp.NullSafeEQ,
                    exp.NullSafeNEQ, exp.TimeToUnix, exp.Min, exp.Max, exp.Count, exp.Ordered, exp.Is)


def _instant_only(node: exp.Expression, outer: Any) -> bool:
    parent = node.parent
    if isinstance(parent, exp.Paren):
        return _instant_only(parent, outer)
    if isinstance(parent, _INSTANT_PARENTS):
        return True
    if isinstance(parent, exp.Anonymous) and parent.name.lower() == "at_timezone":
        return _is_utc(seq(parent.expressions, 1))
    if isinstance(parent, exp.AtTimeZone):
        return _is_utc(parent.args.get("zone"))
    # an output column of the query: the rows hold the instant
    return parent is outer or (isinstance(parent, exp.Alias) and parent.parent is outer)


def seq(items: list, i: int) -> Any:
    return items[i] if len(items) > i else None


def _fix_from_iso8601(node: exp.FromISO8601Timestamp, outer: Any) -> exp.Expression:
    if _instant_only(node, outer):
        return node
    return _macro("trino_from_iso8601_utc", node.this)


def _fix_at_time_zone(node: exp.AtTimeZone, outer: Any) -> exp.Expression:
    if _is_utc(node.args.get("zone")):
        return node.this
    refuse(node, f"{trino_sql(node)}: Athena keeps that time zone on the value and computes fields and formats in "
                 "it; the local engine holds UTC only")


# MySQL specifiers (https://trino.io/docs/current/functions/datetime.html#mysql-date-functions) -> strftime.
_MYSQL = {"a": "%a", "b": "%b", "c": "%-m", "d": "%d", "e": "%-d", "f": "%f", "H": "%H", "h": "%I", "I": "%I",
          "i": "%M", "j": "%j", "k": "%-H", "l": "%-I", "M": "%B", "m": "%m", "p": "%p", "r": "%I:%M:%S %p",
          "S": "%S", "s": "%S", "T": "%H:%M:%S", "v": "%V", "W": "%A", "x": "%G", "Y": "%Y", "y": "%y", "%": "%%"}
_MYSQL_UNSUPPORTED = set("DUuVwX")


def mysql_to_strftime(fmt: str) -> str:
    """A Trino ``date_format``/``date_parse`` format as a DuckDB strftime format; ValueError names what Trino itself
    refuses (``%D %U %u %V %w %X``)."""
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%" or i + 1 == len(fmt):
            out.append("%%" if ch == "%" else ch)
            i += 1
            continue
        spec = fmt[i + 1]
        if spec in _MYSQL_UNSUPPORTED:
            raise ValueError(f"%{spec} is not supported by Athena either")
        out.append(_MYSQL.get(spec, spec.replace("%", "%%")))
        i += 2
    return "".join(out)


# Joda-Time pattern letters (https://trino.io/docs/current/functions/datetime.html#java-date-functions) by count.
_JODA = {("y", 4): "%Y", ("y", 2): "%y", ("y", 1): "%Y", ("Y", 4): "%Y", ("x", 4): "%G",
         ("M", 1): "%-m", ("M", 2): "%m", ("M", 3): "%b", ("M", 4): "%B",
         ("d", 1): "%-d", ("d", 2): "%d", ("D", 1): "%-j", ("D", 3): "%j",
         ("H", 1): "%-H", ("H", 2): "%H", ("h", 1): "%-I", ("h", 2): "%I",
         ("m", 1): "%-M", ("m", 2): "%M", ("s", 1): "%-S", ("s", 2): "%S",
         ("S", 3): "%g", ("S", 6): "%f", ("a", 1): "%p", ("E", 1): "%a", ("E", 2): "%a", ("E", 3): "%a",
         ("E", 4): "%A", ("e", 1): "%u",
         # the local engine's values are UTC, as the zone of from_unixtime and of Athena's session
         ("Z", 1): "+0000", ("Z", 2): "+00:00", ("Z", 3): "UTC", ("z", 1): "UTC", ("z", 2): "UTC", ("z", 3): "UTC"}


def joda_to_strftime(pattern: str) -> str:
    """A Joda-Time pattern (``format_datetime``, ``parse_datetime``) as a DuckDB strftime format; ValueError names
    the letter the local engine does not translate."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            # quoted text; '' is a quote, inside quotes or out
            i += 1
            if i < len(pattern) and pattern[i] == "'":
                out.append("'")
                i += 1
                continue
            while True:
                if i >= len(pattern):
                    raise ValueError("an unterminated quote")
                if pattern[i] == "'":
                    if pattern.startswith("''", i):
                        out.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                out.append("%%" if pattern[i] == "%" else pattern[i])
                i += 1
            continue
        if not ch.isalpha():
            out.append("%%" if ch == "%" else ch)
            i += 1
            continue
        count = 1
        while i + count < len(pattern) and pattern[i + count] == ch:
            count += 1
        key = (ch, min(count, 4) if ch in "ME" else count)
        if key not in _JODA:
            raise ValueError(f"the pattern letters {ch * count!r}")
        out.append(_JODA[key])
        i += count
    return "".join(out)


def _format_arg(node: exp.Anonymous, convert: Callable[[str], str], function: str) -> exp.Literal:
    fmt = seq(node.expressions, 1)
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        refuse(node, f"{function}: the local engine translates a format written as a string literal only")
    try:
        return exp.Literal.string(convert(fmt.this))
    except ValueError as exc:
        refuse(node, f"{function}(..., '{fmt.this}'): {exc}")


def _fix_anonymous(node: exp.Anonymous, outer: Any) -> exp.Expression:
    name = node.name.lower()
    args = node.expressions
    if name == "date_format":
        return exp.Anonymous(this="strftime", expressions=[args[0], _format_arg(node, mysql_to_strftime, name)])
    if name == "date_parse":
        return exp.Anonymous(this="strptime", expressions=[args[0], _format_arg(node, mysql_to_strftime, name)])
    if name == "format_datetime":
        return exp.Anonymous(this="strftime", expressions=[args[0], _format_arg(node, joda_to_strftime, name)])
    if name == "parse_datetime":
        parsed = exp.Anonymous(this="strptime", expressions=[args[0], _format_arg(node, joda_to_strftime, name)])
        return exp.cast(parsed, exp.DataType.build("TIMESTAMPTZ", dialect="duckdb"))
    if name in ("at_timezone", "with_timezone"):
        if not _is_utc(seq(args, 1)):
            refuse(node, f"{trino_sql(node)}: Athena keeps that time zone on the value and computes fields and "
                         "formats in it; the local engine holds UTC only. Use the zone 'UTC'")
        if name == "at_timezone":
            return args[0]
        return exp.cast(args[0], exp.DataType.build("TIMESTAMPTZ", dialect="duckdb"))
    if name.startswith("approx_") or name in ("numeric_histogram", "qdigest_agg", "tdigest_agg", "approx_set",
                                              "make_set_digest", "merge"):
        _refuse_approximate(node, name)
    if name == "is_subnet_of":
        refuse(node, "is_subnet_of is not available on the local engine; test an address with "
                     "contains(<cidr>, CAST(<addr> AS IPADDRESS))")
    return node


def _refuse_approximate(node: exp.Expression, name: str) -> NoReturn:
    exact = {"approx_distinct": "count(DISTINCT ...)",
             "approx_percentile": "an exact percentile: element_at(array_sort(array_agg(x)), "
                                  "CAST(ceiling(0.5 * count(x)) AS BIGINT))"}.get(name, "an exact aggregate")
    refuse(node, f"{name} gives engine-dependent numbers (Athena's approximation is not DuckDB's); use {exact} in "
                 "checks")


# --- strings --------------------------------------------------------------------------------------------------------


def _fix_substring(node: exp.Substring, outer: Any) -> exp.Expression:
    length = node.args.get("length")
    if length is None:
        return _macro("trino_substr", node.this, node.args["start"])
    return _macro("trino_substr_for", node.this, node.args["start"], length)


def _fix_strpos(node: exp.StrPosition, outer: Any) -> exp.Expression:
    occurrence = node.args.get("occurrence")
    if occurrence is None:
        return node
    return _macro("trino_strpos", node.this, node.args["substr"], occurrence)


def _fix_split(node: exp.Split, outer: Any) -> exp.Expression:
    limit = node.args.get("limit")
    if limit is None:
        return node
    return _macro("trino_split", node.this, node.expression, limit)


def _fix_split_part(node: exp.SplitPart, outer: Any) -> exp.Expression:
    return _macro("trino_split_part", node.this, node.args["delimiter"], node.args["part_index"])


def _fix_regexp_extract(node: exp.RegexpExtract, outer: Any) -> exp.Expression:
    pattern = node.expression
    group = node.args.get("group") or exp.Literal.number(0)
    if isinstance(pattern, exp.Literal) and isinstance(group, exp.Literal) and group.is_int \
            and optional_group(pattern.this, int(group.this)):
        refuse(node, f"{trino_sql(node)}: group {group.this} may not take part in a match, where Athena gives NULL "
                     "and the local engine ''; make the group required, or test it with regexp_like first")
    return _macro("trino_regexp_extract", node.this, pattern, group)


def optional_group(pattern: str, group: int) -> bool:
    """Whether capturing group ``group`` can be left out of a match: it, or a group around it, is quantified with a
    minimum of 0, or it sits in one branch of an alternation."""
    if group <= 0:
        return False
    frames: list[dict] = [{"alt": False, "optional": False}]
    owners: dict[int, list[dict]] = {}
    count, i = 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                i += 1
            if i < len(pattern) and pattern[i] == "]":
                i += 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            continue
        if ch == "(":
            capturing = not pattern.startswith("(?", i) or (pattern.startswith("(?<", i)
                                                             and not pattern.startswith(("(?<=", "(?<!"), i))
            capturing = capturing or pattern.startswith("(?P<", i)
            frame = {"alt": False, "optional": False}
            frames.append(frame)
            if capturing:
                count += 1
                owners[count] = list(frames)
        elif ch == "|":
            frames[-1]["alt"] = True
        elif ch == ")" and len(frames) > 1:
            frame = frames.pop()
            rest = pattern[i + 1:i + 4]
            if rest[:1] in ("?", "*") or rest.startswith(("{0", "{,")):
                frame["optional"] = True
        i += 1
    chain = owners.get(group)
    if chain is None:
        return False
    return any(f["optional"] for f in chain) or any(f["alt"] for f in chain[:-1])


def _java_replacement(node: exp.Expression, text: str) -> str:
    """A Java replacement string ($1, \\$) as RE2's (\\1, $)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append("\\\\" if text[i + 1] == "\\" else text[i + 1])
            i += 2
        elif ch == "$":
            digits = re.match(r"\d+", text[i + 1:])
            if not digits:
                refuse(node, f"regexp_replace replacement {text!r}: only $<number> group references translate")
            out.append("\\" + digits.group(0))
            i += 1 + len(digits.group(0))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _fix_regexp_replace(node: exp.RegexpReplace, outer: Any) -> exp.Expression:
    replacement = node.args.get("replacement")
    if replacement is None:
        return node
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        refuse(node, f"{trino_sql(node)}: the local engine translates a replacement written as a string literal only "
                     "($1 means group 1 in Athena, \\1 in DuckDB)")
    node.set("replacement", exp.Literal.string(_java_replacement(node, replacement.this)))
    return node


def _concat_operand_check(node: exp.Expression, operands: list[exp.Expression]) -> None:
    for operand in operands:
        dt = type_of(operand)
        if not (is_unknown(dt) or is_text(dt) or dt.is_type(T.ARRAY, T.NULL) or isinstance(operand, exp.Null)):
            refuse(node, f"{trino_sql(node)}: Athena does not turn {dt.sql('trino')} values into text for || or concat "
                         "(the query fails; https://trino.io/docs/current/functions/conversion.html); "
                         f"CAST({trino_sql(operand)} AS VARCHAR)")


def _fix_concat(node: exp.Concat, outer: Any) -> exp.Expression:
    _concat_operand_check(node, node.expressions)
    return node


def _fix_dpipe(node: exp.DPipe, outer: Any) -> exp.Expression:
    _concat_operand_check(node, [node.this, node.expression])
    return node


def _fix_upper(node: exp.Upper, outer: Any) -> exp.Expression:
    return _macro("trino_upper", node.this)


def _fix_json_scalar(node: exp.JSONExtractScalar, outer: Any) -> exp.Expression:
    return _macro("trino_json_scalar", node.this, node.expression)


# --- arrays, maps, aggregates ---------------------------------------------------------------------------------------


def _fix_reduce(node: exp.Reduce, outer: Any) -> exp.Expression:
    # reduce(array, initial, merge, finish): sqlglot's DuckDB writer drops finish; apply it to the reduced state.
    finish = node.args.get("finish")
    if finish is None:
        return node
    reduced = exp.Reduce(this=node.this, initial=node.args.get("initial"), merge=node.args.get("merge"))
    return _macro("list_extract", _macro("list_transform", exp.Array(expressions=[reduced]), finish),
                  exp.Literal.number(1))


def _fix_unnest(node: exp.Unnest, outer: Any) -> exp.Expression:
    if len(node.expressions) > 1:
        refuse(node, f"{trino_sql(node)}: UNNEST of several arrays at once (Athena pads the shorter with NULL) is not "
                     "translated; UNNEST each array WITH ORDINALITY and join them on the ordinal")
    return node


def _fix_cardinality(node: exp.ArraySize, outer: Any) -> exp.Expression:
    if type_of(node.this).is_type(T.MAP):
        return _macro("cardinality", node.this)
    return node


def _fix_cidr_contains(node: exp.ArrayContains, outer: Any) -> exp.Expression:
    # Trino: contains('10.0.0.0/8', CAST(addr AS IPADDRESS)) tests CIDR membership. sqlglot reads it as
    # array containment (ARRAY_CONTAINS), and DuckDB's inet extension is not available everywhere, so it
    # becomes our cidr_contains(cidr, addr) function (auditor.engines.netaddr), which handles IPv6 and
    # judges IPv4-mapped IPv6 addresses by their IPv4 part, as Trino's IPADDRESS type does.
    cast = node.expression
    if isinstance(cast, (exp.Cast, exp.TryCast)) and cast.to.sql(dialect="trino").upper() == "IPADDRESS":
        return _macro("cidr_contains", node.this, cast.this)
    return node


def _fix_slice(node: exp.ArraySlice, outer: Any) -> exp.Expression:
    # Trino: slice(array, start, length). DuckDB: array_slice(list, begin, end), both ends inclusive.
    # sqlglot's Trino reader puts the length where the end goes.
    if node.args.get("end") is not None and not node.args.get("is_length"):
        start, length = node.args["start"], node.args["end"]
        end = exp.Sub(this=exp.Add(this=start.copy(), expression=length.copy()), expression=exp.Literal.number(1))
        return exp.ArraySlice(this=node.this, start=start, end=end)
    return node


# Guard against a sqlglot rename of ArraySlice's arguments, which would silently disable _fix_slice.
if not {"start", "end"} <= set(exp.ArraySlice.arg_types):
    raise ImportError(f"sqlglot's ArraySlice arguments changed: {sorted(exp.ArraySlice.arg_types)}")


def _refuse_node(message: str) -> Callable[[exp.Expression, Any], exp.Expression]:
    def fix(node: exp.Expression, outer: Any) -> NoReturn:
        refuse(node, message)
    return fix


_FIXUPS: dict[type, Callable[[Any, Any], exp.Expression]] = {
    exp.Div: _fix_div,
    exp.Cast: _fix_cast,
    exp.TryCast: _fix_cast,
    exp.Bracket: _fix_bracket,
    exp.DateDiff: _fix_date_diff,
    exp.DateAdd: _fix_date_add,
    exp.TimestampTrunc: _fix_date_trunc,
    exp.UnixToTime: _fix_from_unixtime,
    exp.FromISO8601Timestamp: _fix_from_iso8601,
    exp.AtTimeZone: _fix_at_time_zone,
    exp.Anonymous: _fix_anonymous,
    exp.Substring: _fix_substring,
    exp.StrPosition: _fix_strpos,
    exp.Split: _fix_split,
    exp.RegexpExtract: _fix_regexp_extract,
    exp.SplitPart: _fix_split_part,
    exp.Reduce: _fix_reduce,
    exp.Unnest: _fix_unnest,
    exp.RegexpReplace: _fix_regexp_replace,
    exp.Concat: _fix_concat,
    exp.DPipe: _fix_dpipe,
    exp.JSONExtractScalar: _fix_json_scalar,
    exp.Upper: _fix_upper,
    exp.ArraySize: _fix_cardinality,
    exp.ArrayContains: _fix_cidr_contains,
    exp.ArraySlice: _fix_slice,
    exp.ApproxDistinct: lambda node, outer: _refuse_approximate(node, "approx_distinct"),
    exp.ApproxQuantile: lambda node, outer: _refuse_approximate(node, "approx_percentile"),
    exp.Typeof: _refuse_node("typeof names types differently on each engine (integer on Athena, INTEGER on "
                             "DuckDB); compare values instead"),
    exp.Format: _refuse_node("format() follows Java's Formatter on Athena and printf on DuckDB (nulls, numbers as "
                             "%s differ); build the text with || and CAST, or lpad for zero padding"),
}
