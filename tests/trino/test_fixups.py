"""The fix-up layer's output, golden: each Trino construct that DuckDB would answer differently and the DuckDB SQL it
becomes (tests/trino/fixups.golden.sql). A sqlglot or fix-up change shows up here as a diff; what the SQL gives is
proven by conformance.yaml. Regenerate after a deliberate change with UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.engines.fixups import joda_to_strftime, mysql_to_strftime, optional_group
from auditor.engines.sql import transpile

GOLDEN = Path(__file__).with_name("fixups.golden.sql")

# Over the local engine's tables, so that the columns are typed as in a check.
CASES = [
    "SELECT bytes / packets AS per_packet, bytes / 2e0 AS half, -7 % 3 AS remainder FROM flow_logs",
    "SELECT CAST(json_extract(requestparameters, '$.groupId') AS VARCHAR) AS group_id FROM cloudtrail",
    "SELECT CAST(r['securityGroupRuleId'] AS VARCHAR) AS rule_id, CAST(element_at(r, 'fromPort') AS BIGINT) AS port, "
    "CAST(r['isEgress'] AS BOOLEAN) AS egress FROM cloudtrail CROSS JOIN UNNEST(CAST(json_extract(responseelements, "
    "'$.securityGroupRuleSet.items') AS ARRAY(MAP(VARCHAR, JSON)))) AS t(r)",
    "SELECT CAST(json_parse(requestparameters) AS ARRAY(MAP(VARCHAR, BIGINT))) AS ports FROM cloudtrail",
    "SELECT try_cast(useragent AS BIGINT) AS n, CAST(readonly AS BOOLEAN) AS ro, CAST(bytes * 1e0 AS BIGINT) AS b "
    "FROM cloudtrail CROSS JOIN flow_logs",
    "SELECT date_diff('hour', from_unixtime(start), from_unixtime(\"end\")) AS hours, "
    "date_add('day', 1, CAST(from_unixtime(start) AS DATE)) AS next_day FROM flow_logs",
    "SELECT hour(from_iso8601_timestamp(eventtime)) AS h FROM cloudtrail "
    "WHERE from_iso8601_timestamp(eventtime) >= TIMESTAMP '2026-01-01 00:00:00 UTC'",
    "SELECT from_unixtime(start / 1e3) AS t, at_timezone(from_unixtime(start), 'UTC') AS u FROM flow_logs",
    "SELECT date_format(from_unixtime(start), '%Y-%m-%d %H:%i:%s') AS d, "
    "format_datetime(from_unixtime(start), 'yyyy-MM-dd''T''HH:mm:ssZ') AS f FROM flow_logs",
    "SELECT substr(srcaddr, -3) AS tail, substr(srcaddr, 1, 4) AS head, strpos(srcaddr, '.', 2) AS second_dot, "
    "split(srcaddr, '.', 2) AS parts, split_part(srcaddr, '.', 5) AS fifth FROM flow_logs",
    "SELECT regexp_extract(useragent, 'aws-cli/([0-9.]+)', 1) AS v, "
    "regexp_replace(useragent, '(\\w+)/', '$1 ') AS u, json_extract_scalar(requestparameters, '$.groupId') AS g "
    "FROM cloudtrail",
    "SELECT ARRAY[1, 2][2] AS second, element_at(ARRAY[1, 2], -1) AS last, "
    "cardinality(MAP(ARRAY['a'], ARRAY[1])) AS n, reduce(ARRAY[1, 2], 0, (s, x) -> s + x, s -> s * 10) AS r",
    "SELECT 1, srcAddr, count(*) FROM flow_logs GROUP BY srcaddr",
]


def test_fixups_golden():
    got = "".join(f"-- {case}\n{transpile(case, name='fixups')};\n\n" for case in CASES)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(got)
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; run with UPDATE_GOLDEN=1 and review it"
    assert got == GOLDEN.read_text(), "the fix-ups' output changed; review, then UPDATE_GOLDEN=1"


@pytest.mark.parametrize("trino, strftime", [
    ("%Y-%m-%d %H:%i:%s", "%Y-%m-%d %H:%M:%S"),
    ("%M %W %c %e %k %l %h %T %r", "%B %A %-m %-d %-H %-I %I %H:%M:%S %I:%M:%S %p"),
    ("100%% %q", "100%% q"),  # %x for any x not listed is the character x
])
def test_mysql_specifiers(trino, strftime):
    assert mysql_to_strftime(trino) == strftime


@pytest.mark.parametrize("spec", list("DUuVwX"))
def test_mysql_specifiers_athena_refuses(spec):
    with pytest.raises(ValueError, match=f"%{spec}"):
        mysql_to_strftime(f"%{spec}")


@pytest.mark.parametrize("joda, strftime", [
    ("yyyy-MM-dd HH:mm:ss.SSS", "%Y-%m-%d %H:%M:%S.%g"),
    ("EEEE, d MMMM yy h a", "%A, %-d %B %y %-I %p"),
    ("yyyy-MM-dd'T'HH:mm:ssZZ", "%Y-%m-%dT%H:%M:%S+00:00"),
    ("'it''s' 100%", "it's 100%%"),
])
def test_joda_letters(joda, strftime):
    assert joda_to_strftime(joda) == strftime


@pytest.mark.parametrize("joda", ["G", "ww", "YYYYY", "'open"])
def test_joda_letters_not_translated(joda):
    with pytest.raises(ValueError):
        joda_to_strftime(joda)


@pytest.mark.parametrize("pattern, group, optional", [
    (r"(\d+)([a-z]+)", 2, False),
    (r"ra(.)|blah(.)(.)", 2, True),
    (r"ra(.)|blah(.)(.)", 1, True),
    (r"(a|b)c", 1, False),
    (r"x(a)?", 1, True),
    (r"x((a)b)*", 2, True),
    (r"x(?:(a)|b)", 1, True),
    (r"[(](a)", 1, False),
    (r"\((a)\)?", 1, False),
    (r"(?<name>a){0,2}", 1, True),
    (r"(a)", 0, False),
])
def test_optional_group(pattern, group, optional):
    assert optional_group(pattern, group) is optional
