"""The Trino -> DuckDB layer: every built-in check's transpiled SQL is golden, and every fix-up is proven
by running the translated SQL in DuckDB against what Trino's semantics give.

Regenerate the golden files after a deliberate change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.builtins import builtins
from auditor.engines import netaddr, trino_macros
from auditor.engines.sql import (
    bind,
    parse,
    placeholders,
    prepare_duckdb,
    prepare_fused,
    transpile,
    ungroup,
)
from auditor.errors import CheckDefinitionError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sql"
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
    trino_macros.register(c)
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
    assert transpile("SELECT contains('10.0.0.0/8', CAST(srcaddr AS IPADDRESS)) AS inside FROM t") == \
        "SELECT\n  CIDR_CONTAINS('10.0.0.0/8', srcaddr) AS inside\nFROM t"
    # a JSON value cast to VARCHAR takes the JSON string's value, and refuses an array or object, as Trino does
    assert transpile("SELECT CAST(json_extract(r, '$.a') AS VARCHAR) AS a FROM t") == \
        "SELECT\n  TRINO_JSON_VARCHAR(r -> '$.a') AS a\nFROM t"


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


# --- cidr_contains: the native IPv4 path of the macro must agree with the Python function everywhere ---------



_octet_text = st.one_of(st.integers(0, 255).map(str), st.sampled_from(["00", "01", "256", "999", "-1", " 1", ""]))
_ipv4ish = st.lists(_octet_text, min_size=3, max_size=5).map(".".join)
_ipv6 = st.one_of(
    # compressed, exploded and upper-case spellings of any address, IPv4-mapped ones included
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n).exploded),
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)).upper()),
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv6Address((0xFFFF << 32) | n))),
    st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{(n >> 16):x}:{(n & 0xFFFF):x}"),
    st.lists(st.integers(0, 0xFFFF).map(lambda g: f"{g:x}"), min_size=0, max_size=9).flatmap(
        lambda gs: st.integers(0, len(gs)).map(lambda i: ":".join(gs[:i]) + "::" + ":".join(gs[i:]))),
    st.lists(st.integers(0, 0xFFFF).map(lambda g: f"{g:x}"), min_size=6, max_size=9).map(":".join),
    st.sampled_from(["::", "::1", "1::", "1:2:3:4:5:6:7::", "1::2::3", ":::", "12345::", "::g", "fe80::1%eth0",
                     "0:0:0:0:0:ffff:a00:1", "[::1]"]),
)
_address = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))),
    _ipv4ish,
    _ipv6,
    st.sampled_from(["::ffff:10.0.0.1", "fd00::1", "::1", "2001:db8::5", " 10.0.0.1", "10.0.0.1 ", "x", ""]),
)
_prefix = st.one_of(st.integers(0, 32).map(str), st.integers(33, 128).map(str),
                    st.sampled_from(["33", "08", "", "-1", "129", "x", "064"]))
_cidr = st.one_of(st.tuples(_address, _prefix).map(lambda t: f"{t[0]}/{t[1]}"), _address,
                  st.sampled_from(["::/0", "fc00::/7", "::ffff:10.0.0.0/104", "::ffff:a00:0/104", "::ffff:0:0/95",
                                   "0.0.0.0/0", "2001:db8::/32", "fe80::/10", "::1/128"]))


@settings(max_examples=400, deadline=None)
@given(pairs=st.lists(st.tuples(st.one_of(st.none(), _cidr), st.one_of(st.none(), _address)), min_size=1, max_size=30))
def test_native_cidr_contains_agrees_with_python(pairs):
    con = duckdb.connect()
    netaddr.register(con)
    try:
        con.execute("CREATE TABLE t (i INTEGER, c VARCHAR, a VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, c, a) for i, (c, a) in enumerate(pairs)])
        got = [v for (v,) in con.execute("SELECT cidr_contains(c, a) FROM t ORDER BY i").fetchall()]
    finally:
        con.close()
    assert got == [netaddr.cidr_contains(c, a) for c, a in pairs]


def _counting(f, calls):
    # DuckDB reads a UDF's arity from its signature, so the wrapper takes exactly the original's arguments.
    if f is netaddr._cidr_contains_arrow:
        return lambda c, a: calls.append((f.__name__, len(c))) or f(c, a)
    return lambda c: calls.append((f.__name__, len(c))) or f(c)


@pytest.mark.parametrize("cidrs", [("'10.0.0.0/8'", "'fc00::/7'"), ("c4", "c6")], ids=["literal", "per-row"])
def test_canonical_addresses_never_reach_the_python_function(monkeypatch, cidrs):
    # The macro's native path is what makes the exposure checks cheap; a regression to the UDF would only show
    # in the benchmark, so prove here that canonical IPv4 and IPv6 inputs do not call it, whether the CIDR is a
    # literal (exposed_well_known_ports) or a column (the rules of unused_sg_rules).
    calls = []
    for name in ("_cidr_contains_arrow", "_shift_arrow", "_key_arrow", "_shift6_arrow", "_key6_arrow"):
        original = getattr(netaddr, name)
        monkeypatch.setattr(netaddr, name, _counting(original, calls))
    con = duckdb.connect()
    netaddr.register(con)
    c4, c6 = cidrs
    rows = con.execute(f"SELECT count(*) FILTER (WHERE cidr_contains({c4}, a)), "
                       f"count(*) FILTER (WHERE cidr_contains({c6}, a)) "
                       "FROM (VALUES ('10.1.2.3', '10.0.0.0/8', 'fc00::/7'), ('8.8.8.8', '10.0.0.0/8', 'fc00::/7'), "
                       "('fd00::1', '10.0.0.0/8', 'fc00::/7'), ('2001:DB8::1', '10.0.0.0/8', 'fc00::/7'), "
                       "('fe80:0:0:0:0:0:0:1', '10.0.0.0/8', 'fc00::/7')) AS v(a, c4, c6)").fetchall()
    assert rows == [(1, 1)]
    # DuckDB folds a literal CIDR's branches once while planning (one value each); no row ever reaches Python.
    per_row = [(name, n) for name, n in calls if cidrs[0] == "c4" or n > 1 or name == "_cidr_contains_arrow"]
    assert per_row == []
    # an IPv4-mapped address is judged by its IPv4 part, in Python
    ((mapped,),) = con.execute(f"SELECT cidr_contains({c4}, a) FROM (VALUES ('::ffff:10.0.0.1', '10.0.0.0/8', "
                               "'fc00::/7')) AS v(a, c4, c6)").fetchall()
    assert mapped is True and ("_cidr_contains_arrow", 1) in calls


def test_a_fused_query_binds_the_engine_querys_window_apart_from_the_reports():
    # The local engine inlines a check's engine query into its report as the query_result CTE; a lookback
    # (unused_sg_rules) gives the two different windows under the same parameter name.
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 10), (2, 20), (3, 30)) AS v(s, x)")
    fused = prepare_fused("WITH kept AS (SELECT * FROM query_result WHERE s >= :since_s) SELECT sum(x) AS total FROM kept",
                          {"since_s": 2, "unused": 0}, "SELECT s, x FROM t WHERE s <= :since_s", {"since_s": 3},
                          table="query_result", name="my_check")
    assert fused.params == {"since_s": 2, "phase1_since_s": 3}
    assert "query_result AS NOT MATERIALIZED" in fused.text  # streamed, never stored
    assert fused.text.index("query_result AS") < fused.text.index("kept AS")
    assert con.execute(fused.text, fused.params).fetchall() == [(50,)]
    with pytest.raises(CheckDefinitionError, match="my_check/query"):
        prepare_fused("SELECT * FROM query_result", {}, "SELECT :nowhere AS x", {}, table="query_result", name="my_check")


def _ungrouped(text: str) -> str:
    return ungroup(parse(text), name="c/query").sql(dialect="trino")


def test_ungroup_turns_each_group_into_its_records():
    # count(*) counts one per record, sum/min/max of a column is the record's value; UNION ALL branches each
    assert _ungrouped("SELECT a, count(*) AS n, sum(b) AS b, min(t) AS first, max(t) AS last FROM f WHERE x = 1 "
                      "GROUP BY a") == ("SELECT a, CAST(1 AS BIGINT) AS n, b AS b, t AS first, t AS last FROM f "
                                        "WHERE x = 1")
    assert _ungrouped("SELECT a, count(*) AS n FROM f GROUP BY a UNION ALL SELECT NULL, count(*) AS n FROM g "
                      "GROUP BY 1") == ("SELECT a, CAST(1 AS BIGINT) AS n FROM f UNION ALL "
                                        "SELECT NULL, CAST(1 AS BIGINT) AS n FROM g")
    assert _ungrouped("SELECT a FROM f") == "SELECT a FROM f"


def test_ungrouped_records_reaggregate_to_the_grouped_rows():
    con = duckdb.connect()
    con.execute("CREATE TABLE f AS SELECT * FROM (VALUES ('x', 1), ('x', 2), ('y', 5), ('x', 2)) AS v(a, b)")
    query = "SELECT a, b, count(*) AS n FROM f GROUP BY a, b"
    report = "SELECT a, sum(n) AS n, count(DISTINCT b) AS bs FROM query_result GROUP BY a ORDER BY a"
    grouped, flat = (prepare_fused(report, {}, query, {}, table="query_result", ungrouped=u) for u in (False, True))
    assert grouped.text.count("GROUP BY") == 2 and flat.text.count("GROUP BY") == 1
    assert con.execute(grouped.text).fetchall() == con.execute(flat.text).fetchall() == [("x", 3, 2), ("y", 1, 1)]


@pytest.mark.parametrize("text, why", [
    ("SELECT a, avg(b) AS b FROM f GROUP BY a", "AVG"),
    ("SELECT a, count(DISTINCT b) AS b FROM f GROUP BY a", "COUNT"),
    ("SELECT a, sum(DISTINCT b) AS b FROM f GROUP BY a", "SUM"),
    ("SELECT a, count(b) AS b FROM f GROUP BY a", "COUNT"),
    ("SELECT a, count(*) + 1 AS n FROM f GROUP BY a", "COUNT"),
    ("SELECT a, count(*) FROM f GROUP BY a", "no alias"),
    ("SELECT a, count(*) AS n FROM f GROUP BY a HAVING count(*) > 2", "HAVING"),
    ("SELECT a, count(*) AS n FROM f GROUP BY a UNION SELECT a, count(*) AS n FROM g GROUP BY a", "UNION without ALL"),
])
def test_ungroup_refuses_what_one_record_cannot_stand_for(text, why):
    with pytest.raises(CheckDefinitionError, match=f"c/query.*{why}"):
        ungroup(parse(text), name="c/query")
