"""The flow summary (issue 25): one Trino definition, golden when transpiled; every built-in flow-log check reads it
and none reads the records; on the local engine it is built once per window and gives the records' sums exactly."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlglot import exp

from auditor.builtins import builtins
from auditor.config import FlowLogSourceSpec
from auditor.engines.embedded import Workspace
from auditor.engines.local import LocalEngine
from auditor.engines.sql import parse, transpile
from auditor.engines.summary import FLOW_SUMMARY, FLOW_SUMMARY_COLUMNS, reads_summary, summary_sql
from auditor.models import Query, TimeWindow
from tests.support.flowdata import record, write_flow_log

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sql" / "flow_summary.sql"
WEEK = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))


def test_the_transpiled_summary_matches_golden():
    got = transpile(summary_sql(), name="flow_summary") + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text(), "transpiled flow_summary.sql changed; review, then UPDATE_GOLDEN=1"


# The checks issue 25 ported. Issue 21's checks (logging_disabled, nacl_changes, probing_sources) landed later and
# still read flow_logs: on Athena each is one more scan of the window until it is ported too.
PORTED = {"top_rejected_sources", "exposed_well_known_ports", "unused_sg_rules"}


def test_the_ported_flow_log_checks_read_the_summary_and_not_the_records():
    flow_checks = [s for s in builtins().checks if s.id in PORTED]
    assert {s.id for s in flow_checks} == PORTED
    for spec in flow_checks:
        for name in ("query.sql", "chart.sql"):
            if name in spec.queries:
                tree = parse(spec.queries[name], name=f"{spec.id}/{name}")
                assert reads_summary(tree), (spec.id, name)
                assert "flow_logs" not in {t.name for t in tree.find_all(exp.Table)}, (spec.id, name)


def test_the_summary_names_the_columns_it_declares():
    tree = parse(summary_sql(), name="flow_summary")
    assert [p.alias_or_name for p in tree.expressions] == [c for c, _ in FLOW_SUMMARY_COLUMNS]
    assert not reads_summary(tree) and reads_summary(parse(f"SELECT flows FROM {FLOW_SUMMARY}"))
    assert not reads_summary(parse(f"WITH {FLOW_SUMMARY} AS (SELECT 1 AS flows) SELECT flows FROM {FLOW_SUMMARY}"))


@pytest.fixture()
def engine(tmp_path):
    records = [record(srcaddr="198.51.100.7", dstport=22, srcport=40000 + i, packets=i + 1, bytes=100 * (i + 1),
                      start=f"2026-11-{10 + i % 3}T0{i % 4}:1{i % 6}:00Z") for i in range(24)]
    records += [record(srcaddr="198.51.100.7", dstport=22, start="2026-11-01T10:00:00Z")]  # in the lookback only
    write_flow_log(tmp_path, records[:24], day="2026/11/10")
    write_flow_log(tmp_path, records[24:], day="2026/11/01")
    ws = Workspace()
    eng = LocalEngine(ws, flow_logs=FlowLogSourceSpec(engine="local", path=tmp_path / "AWSLogs"),
                      cloudtrail_source=None, delivery_lag=timedelta(days=1))
    eng.prepare({"flow_logs": TimeWindow(WEEK.since - timedelta(days=14), WEEK.until)})
    yield eng
    eng.close()
    ws.close()


def _q(text, window):
    return Query(check_id="probe", name="query", text=text, dialect="trino", tables=frozenset({"flow_logs"}),
                 window=window)


def test_the_summary_gives_the_records_sums_exactly_once_per_window(engine):
    sums = ("SELECT sum(flows) AS n, sum(packets) AS p, sum(bytes) AS b, count(DISTINCT srcaddr) AS s, "
            "min(first_start) AS f, max(last_start) AS l FROM flow_summary")
    raw = ("SELECT count(*) AS n, sum(packets) AS p, sum(bytes) AS b, count(DISTINCT srcaddr) AS s, min(start) AS f, "
           "max(start) AS l FROM flow_logs WHERE start >= :since_s AND start < :until_s")
    lookback = TimeWindow(WEEK.since - timedelta(days=14), WEEK.until)
    for window in (WEEK, lookback, WEEK):
        got = engine.run(_q(sums, window), window, {})
        want = engine.run(_q(raw, window), window, {})
        assert got.rows == want.rows and got.types == want.types
    assert got.rows[0][0] == 24
    assert engine.run(_q(sums, lookback), lookback, {}).rows[0][0] == 25
    assert len(engine.summaries.tables) == 2  # one per window, each built once
    # source ports are gone: 24 records on one port from one source in 3 days x 4 hours become 12 rows
    rows = engine.run(_q("SELECT count(*) AS n FROM flow_summary", WEEK), WEEK, {}).rows
    assert rows == ((12,),)
