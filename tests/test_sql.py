"""The Trino -> DuckDB layer: every built-in check's transpiled SQL is golden, and every fix-up is proven
by running the translated SQL in DuckDB against what Trino's semantics give.

Regenerate the golden files after a deliberate change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from auditor.builtins import builtins
from auditor.engines import netaddr
from auditor.engines.sql import bind, parse, placeholders, prepare_duckdb, transpile
from auditor.errors import CheckDefinitionError

GOLDEN = Path(__file__).parent / "golden" / "sql"
CHECKS = builtins().checks


def _check_queries():
    for spec in CHECKS:
        for name in sorted(spec.queries):
            if name.endswith(".sql"):
                yield pytest.param(spec, name, id=f"{spec.id}/{name}")


@pytest.mark.parametrize(("spec", "name"), list(_check_queries()))
def test_transpiled_check_sql_matches_golden(spec, name):
    got = transpile(spec.queries[name], name=f"{spec.id}/{name}") + "\n"
    golden = GOLDEN / f"{spec.id}.{name}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"no golden file {golden}; run with UPDATE_GOLDEN=1 and review the diff"
    assert got == golden.read_text(), f"transpiled SQL of {spec.id}/{name} changed; review, then UPDATE_GOLDEN=1"


@pytest.fixture()
def con():
    c = duckdb.connect()
    netaddr.register(c)
    yield c
    c.close()


def _one(con, trino_sql, params=None):
    prepared = prepare_duckdb(trino_sql, params or {})
    return con.execute(prepared.text, prepared.params).fetchall()


# Each case: Trino SQL, and the value Trino returns for it (from the Trino function docs).
FIXUP_CASES = [
    # contains(cidr, IPADDRESS): CIDR membership, not array containment.
    ("SELECT contains('10.0.0.0/8', CAST('10.20.30.40' AS IPADDRESS))", True),
    ("SELECT contains('10.0.0.0/8', CAST('11.0.0.1' AS IPADDRESS))", False),
    ("SELECT contains('fc00::/7', CAST('fd12:3456::1' AS IPADDRESS))", True),
    ("SELECT contains('2001:db8::/32', CAST('2001:db9::1' AS IPADDRESS))", False),
    # Trino stores IPv4 as IPv4-mapped IPv6, so a mapped address is judged by its IPv4 part.
    ("SELECT contains('192.168.0.0/16', CAST('::ffff:192.168.1.1' AS IPADDRESS))", True),
    # CAST(json_extract(...) AS VARCHAR) gives the scalar without JSON quotes.
    ("""SELECT CAST(json_extract('{"groupId": "sg-123"}', '$.groupId') AS VARCHAR)""", "sg-123"),
    ("""SELECT CAST(json_extract('{"p": 22}', '$.p') AS VARCHAR)""", "22"),
    # slice(array, start, length)
    ("SELECT slice(ARRAY[1, 2, 3, 4, 5, 6], 2, 3)", [2, 3, 4]),
    ("SELECT slice(ARRAY[1, 2, 3, 4, 5, 6], 1, 5)", [1, 2, 3, 4, 5]),
    ("SELECT slice(ARRAY[1, 2], 1, 5)", [1, 2]),
]


@pytest.mark.parametrize(("trino_sql", "expected"), FIXUP_CASES)
def test_fixups_give_trino_semantics_in_duckdb(con, trino_sql, expected):
    assert _one(con, trino_sql) == [(expected,)]


def test_fixup_golden_text():
    assert transpile("SELECT contains('10.0.0.0/8', CAST(srcaddr AS IPADDRESS)) FROM t") == \
        "SELECT\n  CIDR_CONTAINS('10.0.0.0/8', srcaddr)\nFROM t"
    assert transpile("SELECT CAST(json_extract(r, '$.a') AS VARCHAR) FROM t") == "SELECT\n  r ->> '$.a'\nFROM t"


def test_named_parameters_are_bound_not_pasted(con):
    hostile = "x' OR 1=1 --"
    prepared = prepare_duckdb("SELECT :name AS v, :n + 1 AS w", {"name": hostile, "n": 41, "unused": 1})
    assert hostile not in prepared.text
    assert set(prepared.params) == {"name", "n"}
    assert con.execute(prepared.text, prepared.params).fetchall() == [(hostile, 42)]


def test_list_parameters_bind_as_lists(con):
    assert _one(con, "SELECT contains(:ports, 22), contains(:ports, 23)", {"ports": (22, 3389)}) == [(True, False)]


def test_missing_parameter_is_a_definition_error():
    with pytest.raises(CheckDefinitionError, match=r":top_n"):
        bind(parse("SELECT 1 LIMIT :top_n"), {})


def test_positional_parameters_are_refused():
    with pytest.raises(CheckDefinitionError, match="positional"):
        placeholders(parse("SELECT ? AS x"))


def test_bare_ipaddress_cast_is_refused_not_mistranslated():
    with pytest.raises(CheckDefinitionError, match="IPADDRESS"):
        transpile("SELECT CAST(srcaddr AS IPADDRESS) FROM t")


def test_approx_distinct_is_refused():
    with pytest.raises(CheckDefinitionError, match="approx_distinct"):
        transpile("SELECT approx_distinct(srcaddr) FROM t")


def test_syntax_error_names_the_query():
    with pytest.raises(CheckDefinitionError, match="my_check/query.sql"):
        parse("SELEC 1", name="my_check/query.sql")
