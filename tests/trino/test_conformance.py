"""The local engine speaks Trino as Athena does: every row of ``conformance.yaml`` runs through the local engine
(the workspace that ``auditor query --sql`` and the checks use) and must give the result that Trino documents, or
be refused with the row's message. Nothing may be silently different.

A row:

- ``sql`` (a query) or ``expr`` (an expression, run as ``SELECT <expr>``);
- ``rows`` (a list of rows, each a list) or ``value`` (the one value of ``expr``), or ``fails``: Trino fails the
  query with that message, and so must the local engine;
- ``columns``: the output column names, when the row is about them;
- ``doc``: the Trino or Athena page that documents the result; ``source``: the Trino test or class, where the page
  does not show the edge case;
- ``local``: ``equal``, or ``refused: <part of the refusal message>``.

Values are YAML values (integers, floats for DOUBLE, strings, booleans, null, lists, maps), or tagged:
``!decimal '0.3'``, ``!date '2020-03-01'``, ``!timestamp '2020-03-01 00:01:26.000'`` and ``!timestamptz
'2020-05-11 11:15:05.055 +01:00'`` (a timestamp with time zone compares as an instant: the local engine holds it in
UTC). Types count: 3 is not 3.0, and 3.0 is not DECIMAL '3.0'. Rows compare in any order unless ``ordered: true``.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.engines.embedded import Workspace
from auditor.errors import AuditorError

TABLE = Path(__file__).with_name("conformance.yaml")
FAMILIES = {"arithmetic", "casts", "time", "strings", "arrays and maps", "aggregates", "column names", "nulls",
            "already working"}
DOC = re.compile(r"^https://(trino\.io/docs/current/|docs\.aws\.amazon\.com/athena/)")


class _Loader(yaml.SafeLoader):
    pass


def _timestamp(text: str, zoned: bool) -> datetime:
    text = text.strip()
    zone = None
    if zoned:
        text, _, zone = text.rpartition(" ")
    value = datetime.fromisoformat(text)
    if zone is None:
        return value
    if zone == "UTC":
        return value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(f"{text}{zone}")


_Loader.add_constructor("!decimal", lambda loader, node: Decimal(loader.construct_scalar(node)))
_Loader.add_constructor("!date", lambda loader, node: date.fromisoformat(loader.construct_scalar(node)))
_Loader.add_constructor("!timestamp", lambda loader, node: _timestamp(loader.construct_scalar(node), False))
_Loader.add_constructor("!timestamptz", lambda loader, node: _timestamp(loader.construct_scalar(node), True))


def _rows() -> list[dict[str, Any]]:
    return yaml.load(TABLE.read_text(encoding="utf-8"), Loader=_Loader)


ROWS = _rows()


def _same(expected: Any, got: Any) -> bool:
    """Equal values of the same kind: bool, int, float, Decimal, str, date, naive or aware datetime, list, map."""
    if expected is None or got is None:
        return expected is got
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and expected == got
    if isinstance(expected, float):
        return isinstance(got, float) and (expected == got or (math.isnan(expected) and math.isnan(got)))
    if isinstance(expected, datetime):
        return isinstance(got, datetime) and (expected.tzinfo is None) == (got.tzinfo is None) and expected == got
    if isinstance(expected, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(expected) == len(got) and all(map(_same, expected, got))
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and all(_same(v, got[k]) for k, v in
                                                                                expected.items())
    return type(expected) is type(got) and expected == got


def _same_multiset(expected: list, got: list) -> bool:
    left = list(got)
    for want in expected:
        hit = next((i for i, have in enumerate(left) if _same(want, have)), None)
        if hit is None:
            return False
        left.pop(hit)
    return not left


def _sql(row: dict[str, Any]) -> str:
    return row["sql"] if "sql" in row else f"SELECT {row['expr']}"


def _id(row: dict[str, Any]) -> str:
    return f"{row['family']}: {row.get('expr') or ' '.join(row['sql'].split())}"[:110]


@pytest.fixture(scope="module")
def workspace():
    ws = Workspace()
    yield ws
    ws.close()


def test_every_row_is_well_formed():
    assert len(ROWS) >= 100
    for row in ROWS:
        assert row["family"] in FAMILIES, row
        assert ("sql" in row) != ("expr" in row), row
        assert sum(k in row for k in ("rows", "value", "fails")) == 1, row
        assert DOC.match(row["doc"]), row
        assert row["local"] == "equal" or row["local"].startswith("refused: "), row
    for family in FAMILIES:
        assert any(row["family"] == family for row in ROWS), family


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_row(workspace, row):
    sql = _sql(row)
    if row["local"] != "equal":
        expected = row["local"].removeprefix("refused: ")
        with pytest.raises(AuditorError) as refused:
            workspace.execute(sql, {}, name="conformance", engine="local")
        assert expected in str(refused.value)
        return
    if "fails" in row:
        with pytest.raises(AuditorError) as failed:
            workspace.execute(sql, {}, name="conformance", engine="local")
        assert row["fails"] in str(failed.value)
        return
    result = workspace.execute(sql, {}, name="conformance", engine="local")
    got = [list(r) for r in result.rows]
    expected = row["rows"] if "rows" in row else [[row["value"]]]
    if row.get("ordered"):
        matched = len(got) == len(expected) and all(map(_same, expected, got))
    else:
        matched = _same_multiset(expected, got)
    assert matched, f"Trino: {expected!r}; local: {got!r}"
    if "columns" in row:
        assert list(result.columns) == row["columns"]
