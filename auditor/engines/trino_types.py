"""Trino's types on a parsed query, so the fix-ups can tell ``7 / 2`` (integers: Trino truncates) from
``7e0 / 2``, or a JSON value from a VARCHAR.

sqlglot's type annotator does the work (qualify resolves each column to its source, then the types flow up).
It runs on a copy, because qualifying rewrites the query; the types are copied back to the original nodes.
Where sqlglot's Trino typing differs from Trino, this module says so:

- a number literal with a point and no exponent is a DECIMAL, not a DOUBLE
  (https://trino.io/docs/current/language/types.html#decimal);
- a subscript or ``element_at`` on a ``MAP(K, V)`` is a ``V`` (sqlglot leaves it unknown);
- ``json_extract`` is JSON, ``json_extract_scalar`` a VARCHAR;
- a ``:name`` parameter has the type of the value bound to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema
from sqlglot.typing.presto import EXPRESSION_METADATA as _TRINO_METADATA

DIALECT = "trino"
T = exp.DataType.Type

# Table -> column -> type, as DuckDB names the types (information_schema.columns.data_type).
Catalog = Mapping[str, Mapping[str, str]]

_INT32 = 2**31


def type_of(node: exp.Expression | None) -> exp.DataType:
    """The Trino type found for a node; UNKNOWN when none was."""
    found = getattr(node, "type", None)
    return found if isinstance(found, exp.DataType) else exp.DataType.build("UNKNOWN")


def is_integer(dt: exp.DataType) -> bool:
    return dt.is_type(*exp.DataType.INTEGER_TYPES) and not dt.is_type(T.BIT)


def is_floating(dt: exp.DataType) -> bool:
    return dt.is_type(*exp.DataType.REAL_TYPES) and not dt.is_type(*_DECIMALS)


def is_decimal(dt: exp.DataType) -> bool:
    return dt.is_type(*_DECIMALS)


def is_text(dt: exp.DataType) -> bool:
    return dt.is_type(*exp.DataType.TEXT_TYPES)


def is_json(dt: exp.DataType) -> bool:
    return dt.is_type(T.JSON)


def is_unknown(dt: exp.DataType) -> bool:
    return dt.is_type(T.UNKNOWN) or dt.this is None


_DECIMALS = tuple(t for t in T if "DECIMAL" in t.name or "MONEY" in t.name)


def schema_from_catalog(catalog: Catalog) -> MappingSchema:
    """A sqlglot schema in Trino's type names from DuckDB's catalog (a type sqlglot cannot read stays unknown)."""
    tables: dict[str, dict[str, str]] = {}
    for table, columns in catalog.items():
        converted = {}
        for column, duck_type in columns.items():
            try:
                converted[column] = exp.DataType.build(duck_type, dialect="duckdb").sql(DIALECT)
            except SqlglotError:
                converted[column] = "UNKNOWN"
        tables[table] = converted
    return MappingSchema(tables, dialect=DIALECT)


def annotate(tree: exp.Expression, catalog: Catalog, params: Mapping[str, Any] | None = None) -> None:
    """Set ``.type`` on every node of ``tree`` that Trino's typing rules give a type."""
    nodes = list(tree.walk())
    for i, node in enumerate(nodes):
        node.meta["_trino_node"] = i
    try:
        work = tree.copy()
        schema = schema_from_catalog(catalog)
        try:
            work = qualify(work, dialect=DIALECT, schema=schema, validate_qualify_columns=False,
                           quote_identifiers=False, identify=False)
        except (OptimizeError, SqlglotError):
            work = tree.copy()  # unqualified columns stay unknown; the fix-ups refuse what they cannot type
        annotate_types(work, schema=schema, dialect=DIALECT, expression_metadata=_metadata(params or {}))
        for node in work.walk():
            index = node.meta.get("_trino_node")
            if index is not None and isinstance(node.type, exp.DataType) and not is_unknown(node.type):
                nodes[index].type = node.type
    finally:
        for node in nodes:
            node.meta.pop("_trino_node", None)


def _metadata(params: Mapping[str, Any]) -> dict:
    return {
        **_TRINO_METADATA,
        exp.Literal: {"annotator": _annotate_literal},
        exp.Bracket: {"annotator": _annotate_bracket},
        exp.JSONExtract: {"returns": T.JSON},
        # timestamp(3) with time zone (https://trino.io/docs/current/functions/datetime.html)
        exp.UnixToTime: {"returns": T.TIMESTAMPTZ},
        exp.FromISO8601Timestamp: {"returns": T.TIMESTAMPTZ},
        exp.CurrentTimestamp: {"returns": T.TIMESTAMPTZ},
        exp.TimeToUnix: {"returns": T.DOUBLE},
        exp.JSONExtractScalar: {"returns": T.VARCHAR},
        exp.Placeholder: {"annotator": lambda self, e: self._set_type(e, _param_type(params.get(e.name)))},
    }


def _annotate_literal(self: Any, literal: exp.Literal) -> exp.Literal:
    text = literal.this
    if literal.is_string:
        return self._set_type(literal, exp.DataType.build("VARCHAR"))
    if "e" in text.lower():
        return self._set_type(literal, T.DOUBLE)
    if "." in text:
        # https://trino.io/docs/current/language/types.html#decimal: 1.5 is DECIMAL(2, 1)
        digits = text.lstrip("+-").replace(".", "")
        scale = len(text.split(".", 1)[1])
        return self._set_type(literal, exp.DataType.build(f"DECIMAL({max(len(digits), 1)}, {scale})"))
    value = int(text)
    if -_INT32 <= value < _INT32:
        return self._set_type(literal, T.INT)
    if -(2**63) <= value < 2**63:
        return self._set_type(literal, T.BIGINT)
    return self._set_type(literal, exp.DataType.build(f"DECIMAL({len(text.lstrip('+-'))}, 0)"))


def _annotate_bracket(self: Any, bracket: exp.Bracket) -> exp.Bracket:
    container = type_of(bracket.this)
    if container.is_type(T.MAP) and len(container.expressions) == 2:
        return self._set_type(bracket, container.expressions[1])
    return self._annotate_bracket(bracket)


def _param_type(value: Any) -> exp.DataType:
    if isinstance(value, bool):
        return exp.DataType.build("BOOLEAN")
    if isinstance(value, int):
        return exp.DataType.build("BIGINT")
    if isinstance(value, float):
        return exp.DataType.build("DOUBLE")
    if isinstance(value, Decimal):
        return exp.DataType.build("DECIMAL(38, 9)")
    if isinstance(value, str):
        return exp.DataType.build("VARCHAR")
    if isinstance(value, datetime):
        return exp.DataType.build("TIMESTAMP WITH TIME ZONE" if value.tzinfo else "TIMESTAMP", dialect=DIALECT)
    if isinstance(value, date):
        return exp.DataType.build("DATE")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, type(value[0])) for v in value):
        return exp.DataType.build(f"ARRAY({_param_type(value[0]).sql(DIALECT)})", dialect=DIALECT)
    return exp.DataType.build("UNKNOWN")
