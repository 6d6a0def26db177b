"""The SQL the Athena engine sends: logical tables mapped, partitions pruned, values bound, nothing pasted."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlglot

from auditor.builtins import builtins
from auditor.config import AthenaSourceSpec, parse_size
from auditor.engines.athena.querymap import (
    Scope,
    check_source,
    compile_query,
    execution_parameter,
    literal_node,
    partition_days,
)
from auditor.errors import CheckDefinitionError, ConfigError
from auditor.models import TimeWindow

WEEK = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
LAG = timedelta(days=1)
CHECKS = builtins().checks
PARAMS = {"sensitive_ports": (22, 3389), "top_n": 20, "bucket": "hour"}


def source(**kw):
    base = {"engine": "athena", "database": "sec", "tables": ["vpc_v2"], "location": "s3://org-logs/AWSLogs/"}
    return AthenaSourceSpec.model_validate({**base, **kw})


def compiled(text, *, flow=None, trail=None, scope=Scope("111122223333", "us-east-1"), params=PARAMS, window=WEEK,
             materialised=None):
    sources = {"flow_logs": flow or source(), "cloudtrail": trail or source(tables=["trail"])}
    return compile_query(text, sources=sources, window=window, params=params, delivery_lag=LAG, scope=scope,
                         check_id="probe", name="query", materialised=materialised)


SUMMARY = {"flow_summary": ("scratch", "auditor_flow_summary_abc_0")}


def test_a_weekly_run_over_a_month_of_data_reads_eight_days():
    days = partition_days(WEEK, LAG)
    assert days[0] == date(2026, 11, 9) and days[-1] == date(2026, 11, 16) and len(days) == 8
    # a window ending mid-day still reaches the day its lag ends in
    assert partition_days(TimeWindow(WEEK.since, WEEK.until + timedelta(hours=6)), LAG)[-1] == date(2026, 11, 17)


def test_logical_table_becomes_a_subquery_with_partition_predicates_and_parameters():
    q = compiled("SELECT srcaddr, count(*) AS n FROM flow_logs WHERE start >= :since_s AND start < :until_s "
                 "GROUP BY srcaddr")
    assert '"sec"."vpc_v2"' in q.text and ") AS \"flow_logs\"" in q.text
    assert '"aws_account_id" = ?\n    AND "aws_region" = ?\n    AND "day" BETWEEN ? AND ?' in q.text
    assert q.parameters == ("'111122223333'", "'us-east-1'", "'2026/11/09'", "'2026/11/16'",
                            str(WEEK.since_s), str(WEEK.until_s))
    assert q.text.count("?") == len(q.parameters)
    # only the columns the query uses are projected
    assert '"srcaddr"' in q.text and '"tcp_flags"' not in q.text
    assert sqlglot.parse_one(q.text.replace("?", "1"), read="trino") is not None
    assert q.scans[0].days[0] == date(2026, 11, 9) and q.scans[0].account == "111122223333"


def test_every_builtin_check_compiles_and_binds_in_order():
    for spec in CHECKS:
        for name in ("query.sql", "chart.sql"):
            if name not in spec.queries:
                continue
            q = compiled(spec.queries[name], params={**PARAMS, **spec.validate_params({})}, materialised=SUMMARY)
            assert q.text.count("?") == len(q.parameters), spec.id
            assert ":" + "since" not in q.text and ":until" not in q.text
            assert q.text.startswith("-- auditor probe/query 111122223333/us-east-1\n")


def test_a_check_that_reads_flow_logs_and_cloudtrail_maps_both_tables():
    spec = CHECKS.get("probing_sources")
    q = compiled(spec.queries["query.sql"], params={**PARAMS, **spec.validate_params({})})
    assert '"vpc_v2"' in q.text and '"trail"' in q.text
    assert len(q.scans) == 2 and {s.service for s in q.scans} == {"vpcflowlogs", "CloudTrail"}
    assert "ARRAY[80, 443]" in q.text and "ARRAY[22, 3389]" in q.text  # typed literals, never strings
    assert sqlglot.parse_one(q.text.replace("?", "1"), read="trino") is not None


def test_lists_limits_and_enums_become_typed_literals():
    q = compiled("SELECT date_trunc(:bucket, from_unixtime(start)) AS b FROM flow_logs "
                 "WHERE contains(:sensitive_ports, dstport) LIMIT :top_n")
    assert "ARRAY[22, 3389]" in q.text and "LIMIT 20" in q.text and "DATE_TRUNC('hour'" in q.text
    assert q.parameters[-1] == "'2026/11/16'"  # only the partition values travel as parameters here


def test_a_string_parameter_is_quoted_and_escaped_never_spliced():
    q = compiled("SELECT eventname FROM cloudtrail WHERE eventname = :name",
                 params={"name": "x' OR '1'='1"})
    assert "x'" not in q.text.replace("'-'", "")
    assert q.parameters[-1] == "'x'' OR ''1''=''1'"


def test_unsafe_values_outside_where_are_refused():
    with pytest.raises(CheckDefinitionError, match="outside a WHERE clause"):
        compiled("SELECT :name AS n FROM flow_logs", params={"name": "a'; DROP TABLE x; --"})
    with pytest.raises(CheckDefinitionError, match="lists of integers or identifier-like strings"):
        literal_node(["a", "b'); DROP TABLE x; --"], name="x")
    assert literal_node(["eni-0a1", "eni-0b2"], name="x").sql(dialect="trino") == "ARRAY['eni-0a1', 'eni-0b2']"


@pytest.mark.parametrize("value, text", [
    (5, "5"), (True, "true"), ("it's", "'it''s'"), (None, "NULL"),
    (datetime(2026, 11, 9, 0, 0, 1, 500000, tzinfo=timezone.utc), "TIMESTAMP '2026-11-09 00:00:01.500 UTC'"),
    (date(2026, 11, 9), "DATE '2026-11-09'"),
])
def test_execution_parameter_literals(value, text):
    assert execution_parameter(value) == text


def test_hive_layout_prunes_year_month_day_across_a_month_end():
    flow = source(projection={"layout": "hive"})
    window = TimeWindow(datetime(2026, 11, 28, tzinfo=timezone.utc), datetime(2026, 12, 2, tzinfo=timezone.utc))
    q = compiled("SELECT srcaddr FROM flow_logs WHERE start >= :since_s", flow=flow, window=window)
    flat = " ".join(q.text.split())
    assert flat.count('"year" = ? AND "month" = ? AND "day" BETWEEN ? AND ?') == 2 and ") OR (" in flat
    assert q.parameters[:10] == ("'111122223333'", "'us-east-1'", "'2026'", "'11'", "'28'", "'30'",
                                 "'2026'", "'12'", "'01'", "'02'")
    assert q.scans[0].hive


def test_day_layout_restricts_the_account_and_region_by_path():
    trail = source(tables=["cloudtrail"], projection={"layout": "day", "day_column": "timestamp"})
    q = compiled("SELECT eventid FROM cloudtrail WHERE from_iso8601_timestamp(eventtime) >= :since", trail=trail)
    assert '"timestamp" BETWEEN ? AND ?' in q.text and 'STRPOS("$path", ?) > 0' in q.text
    assert q.parameters == ("'2026/11/09'", "'2026/11/16'", "'/111122223333/CloudTrail/us-east-1/'",
                            "TIMESTAMP '2026-11-09 00:00:00.000 UTC'")


def test_unscoped_queries_have_no_account_or_region_predicate():
    q = compiled("SELECT srcaddr FROM flow_logs", scope=Scope())
    assert "aws_account_id\" = ?" not in q.text and q.parameters == ("'2026/11/09'", "'2026/11/16'")


def test_one_table_per_format_union_with_nulls_and_flow_log_ids():
    flow = source(tables=["vpc_v2", {"name": "vpc_v5", "format": "${version} ${interface-id} ${srcaddr} ${dstaddr} "
                                     "${dstport} ${protocol} ${start} ${action} ${log-status} ${flow-direction}",
                                     "flow_log_ids": ["fl-0123456789abcdef0"]}])
    q = compiled("SELECT flow_direction, srcaddr FROM flow_logs f WHERE f.start >= :since_s", flow=flow)
    assert "UNION ALL" in q.text and '"sec"."vpc_v5"' in q.text
    assert 'CAST(NULL AS VARCHAR) AS "flow_direction"' in q.text  # v2 has no flow-direction field
    assert 'NULLIF("flow_direction", \'-\') AS "flow_direction"' in q.text
    assert ") AS \"f\"" in q.text
    assert "'_fl-0123456789abcdef0_'" in q.parameters
    assert q.scans[1].flow_log_ids == ("fl-0123456789abcdef0",)


def test_a_format_field_that_is_also_a_partition_column_is_refused():
    flow = source(tables=[{"name": "t", "format": "${version} ${srcaddr} ${region}"}],
                  projection={"region_column": "region"})
    with pytest.raises(ConfigError, match="also partition columns"):
        check_source("flow_logs", flow)
    check_source("flow_logs", source(tables=[{"name": "t", "format": "${version} ${srcaddr} ${region}"}]))


def test_sizes():
    assert parse_size("10 GB") == 10**10 and parse_size("1GiB") == 2**30 and parse_size(512) == 512
    with pytest.raises(ValueError):
        parse_size("lots")


def test_the_flow_summary_reads_the_window_once_and_the_checks_read_the_summary():
    from auditor.engines.summary import summary_sql
    select = compiled(summary_sql(), params={})
    assert '"sec"."vpc_v2"' in select.text and '"day" BETWEEN ? AND ?' in select.text
    assert select.parameters[-2:] == (str(WEEK.since_s), str(WEEK.until_s))
    top = next(s for s in CHECKS if s.id == "top_rejected_sources")
    q = compiled(top.queries["query.sql"], materialised=SUMMARY)
    assert '"scratch"."auditor_flow_summary_abc_0" AS flow_summary' in q.text and "vpc_v2" not in q.text
    assert q.scans == ()  # nothing of the logs: the budget estimate lists the summary's folder instead
    with pytest.raises(CheckDefinitionError, match="reads flow_summary, which this run has not created"):
        compiled(top.queries["query.sql"])
