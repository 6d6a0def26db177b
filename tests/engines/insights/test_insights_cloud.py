"""The CloudWatch Logs Insights engine through botocore's Stubber: StartQuery and GetQueryResults states, the
inclusive end, 10,000-row truncation and window splitting, merging, 50-log-group batches, throttling,
StopQuery on timeout, the concurrency cap, scan statistics and cost. Where answers matter, they are produced by
the local Insights engine over real files, and a whole run with Insights sources must give the findings the
local run gives."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.session
import pyarrow as pa
import pytest
from botocore.stub import ANY, Stubber

from auditor.config import InsightsSettings, InsightsSourceSpec
from auditor.engines.embedded import Workspace
from auditor.engines.insights.catalog import TableCatalog
from auditor.engines.insights.cloud import CloudInsightsEngine
from auditor.engines.insights.local import run_insights
from auditor.engines.insights.parser import InsightsUnsupportedError
from auditor.engines.sources import files, flowlogs
from auditor.errors import EngineError
from auditor.models import Query, TimeWindow
from tests.support.flowdata import record, write_flow_log

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))


_SESSION = botocore.session.get_session()  # one session: its loaded service models are reused by every client


def logs_client() -> Any:
    return _SESSION.create_client(
        "logs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def engine(client: Any, *, groups=("/vpc/flow",), trail_groups=("/aws/cloudtrail",), row_cap: int = 10_000,
           min_slice: str = "1h", timeout: str = "15m", concurrency: int = 1, clock=None, sleeps=None,
           fmt: str | None = None) -> CloudInsightsEngine:
    sources = {"flow_logs": InsightsSourceSpec(engine="insights", log_groups=groups, format=fmt),
               "cloudtrail": InsightsSourceSpec(engine="insights", log_groups=trail_groups)}
    return CloudInsightsEngine(client, sources=sources, settings=InsightsSettings(
        max_concurrency=concurrency, min_slice=min_slice, timeout=timeout), price_per_gb=0.005,
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)), clock=clock or time.monotonic,
        rng=random.Random(7), row_cap=row_cap)


def q(text: str, table: str = "flow_logs", window: TimeWindow = WINDOW, params=None) -> Query:
    return Query("adhoc", "query", text, "insights", frozenset({table}), window, params or {})


def cw(value: Any) -> str:
    """A value the way GetQueryResults writes it."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


def results(*rows: dict[str, Any]) -> list[list[dict[str, str]]]:
    return [[{"field": k, "value": cw(v)} for k, v in r.items()] + [{"field": "@ptr", "value": "CmAK"}] for r in rows]


def complete(rows, scanned=1000.0, records=10.0) -> dict:
    return {"status": "Complete", "results": rows,
            "statistics": {"recordsMatched": float(len(rows)), "recordsScanned": records, "bytesScanned": scanned}}


# ------------------------------------------------------------------------------------------ static stubs

REJECTS = 'filter action = "REJECT" | stats count(*) as n by srcAddr'
REMOTE = ("filter startTime >= {lo} and startTime < {hi}\n| filter action = \"REJECT\"\n"
          "| stats count(*) as auditorP0 by srcAddr as auditorG0")


def start_params(window: TimeWindow, groups=("/vpc/flow",), text: str | None = None) -> dict:
    return {"logGroupNames": list(groups), "startTime": window.since_s, "endTime": window.until_s - 1,
            "queryString": text if text is not None else REMOTE.format(lo=window.since_s, hi=window.until_s),
            "limit": 10_000}


def test_start_query_polls_until_complete_and_types_the_answer():
    client = logs_client()
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-1"}, start_params(WINDOW))
        stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", complete(results({"auditorG0": "198.51.100.7", "auditorP0": 5},
                                                                 {"auditorG0": "-", "auditorP0": 2}),
                                                        scanned=3 * 2**30, records=12345.0), {"queryId": "q-1"})
        res = engine(client, sleeps=sleeps).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()
    assert res.columns == ("srcAddr", "n") and res.types == ("VARCHAR", "BIGINT")
    assert sorted(res.rows, key=repr) == sorted([("198.51.100.7", 5), (None, 2)], key=repr)  # "-" is no value
    assert sleeps == [1.0, 1.5]  # polled while Scheduled and Running, backing off
    st = res.stats
    assert st.query_id == "q-1" and st.bytes_scanned == 3 * 2**30 and st.records_scanned == 12345
    assert st.cost_usd == pytest.approx(0.015) and not st.truncated
    assert "scanned 3,221,225,472 bytes" in st.notes[0] and "$0.0150" in st.notes[0]
    assert st.text_as_run == REMOTE.format(lo=WINDOW.since_s, hi=WINDOW.until_s)


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout", "Unknown"])
def test_a_query_that_does_not_complete_is_an_engine_error(status):
    client = logs_client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-9"}, start_params(WINDOW))
        stub.add_response("get_query_results", {"status": status, "results": []}, {"queryId": "q-9"})
        with pytest.raises(EngineError, match=f"ended {status}.*q-9"):
            engine(client).run(q(REJECTS), WINDOW, {})


def test_throttling_is_retried_with_jittered_backoff():
    client = logs_client()
    sleeps: list[float] = []
    with Stubber(client) as stub:
        stub.add_client_error("start_query", "LimitExceededException", "too many concurrent queries")
        stub.add_client_error("start_query", "ThrottlingException", "Rate exceeded")
        stub.add_response("start_query", {"queryId": "q-2"}, start_params(WINDOW))
        stub.add_client_error("get_query_results", "ThrottlingException", "Rate exceeded")
        stub.add_response("get_query_results", complete(results({"auditorG0": "192.0.2.1", "auditorP0": 1})),
                          {"queryId": "q-2"})
        res = engine(client, sleeps=sleeps).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()
    assert res.rows == (("192.0.2.1", 1),)
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0 and 0 <= sleeps[2] <= 0.5  # full jitter, doubling caps
    assert len(set(sleeps)) == 3


def test_throttling_gives_up_after_eight_attempts_and_other_errors_do_not_retry():
    client = logs_client()
    with Stubber(client) as stub:
        for _ in range(8):
            stub.add_client_error("start_query", "LimitExceededException", "too many concurrent queries")
        with pytest.raises(EngineError, match="LimitExceededException"):
            engine(client).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()
    client = logs_client()
    with Stubber(client) as stub:
        stub.add_client_error("start_query", "MalformedQueryException", "unexpected symbol")
        with pytest.raises(EngineError, match="MalformedQueryException: unexpected symbol"):
            engine(client).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()


def test_a_query_over_the_timeout_is_stopped():
    client = logs_client()
    ticks = iter([0.0, 100.0, 1000.0])
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-3"}, start_params(WINDOW))
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-3"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-3"})
        stub.add_response("stop_query", {"success": True}, {"queryId": "q-3"})
        with pytest.raises(EngineError, match=r"stopped after 10m.*q-3"):
            engine(client, timeout="10m", clock=lambda: next(ticks)).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()


def test_a_full_slice_is_split_in_halves_down_to_the_minimum_then_marked_truncated():
    window = TimeWindow(datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 10, 4, tzinfo=timezone.utc))
    h = timedelta(hours=1)
    w0 = window
    w1, w2 = TimeWindow(window.since, window.since + 2 * h), TimeWindow(window.since + 2 * h, window.until)
    w1a, w1b = TimeWindow(w1.since, w1.since + h), TimeWindow(w1.since + h, w1.until)
    full = results(*({"auditorG0": f"198.51.100.{i}", "auditorP0": 1} for i in range(3)))
    client = logs_client()
    with Stubber(client) as stub:
        for i, (w, rows) in enumerate([
                (w0, full), (w1, full),
                (w2, results({"auditorG0": "198.51.100.1", "auditorP0": 4})),
                (w1a, full),  # still full at the 1h minimum: kept, and the result is marked truncated
                (w1b, results({"auditorG0": "198.51.100.1", "auditorP0": 2}))]):
            params = start_params(w)
            params["limit"] = 3
            stub.add_response("start_query", {"queryId": f"q-{i}"}, params)
            stub.add_response("get_query_results", complete(rows, scanned=100.0), {"queryId": f"q-{i}"})
        res = engine(client, row_cap=3, min_slice="1h").run(q(REJECTS, window=window), window, {})
        stub.assert_no_pending_responses()
    # The split queries' rows are dropped, their halves' rows merged: counts add across slices.
    assert dict(res.rows) == {"198.51.100.0": 1, "198.51.100.1": 1 + 4 + 2, "198.51.100.2": 1}
    assert res.stats.truncated and res.stats.bytes_scanned == 500  # every query sent is billed
    assert any(n.startswith("truncated: a window slice of 1h") for n in res.stats.notes)


def test_more_than_50_log_groups_are_queried_in_batches():
    groups = tuple(f"/vpc/flow-{i:02d}" for i in range(60))
    client = logs_client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-a"}, start_params(WINDOW, groups[:50]))
        stub.add_response("get_query_results", complete(results({"auditorG0": "192.0.2.1", "auditorP0": 3})),
                          {"queryId": "q-a"})
        stub.add_response("start_query", {"queryId": "q-b"}, start_params(WINDOW, groups[50:]))
        stub.add_response("get_query_results", complete(results({"auditorG0": "192.0.2.1", "auditorP0": 4})),
                          {"queryId": "q-b"})
        res = engine(client, groups=groups).run(q(REJECTS), WINDOW, {})
        stub.assert_no_pending_responses()
    assert res.rows == (("192.0.2.1", 7),)
    assert res.stats.query_id == "q-a,q-b"


def test_custom_format_gets_the_generated_parse_clause_first():
    fmt = "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${start} ${action} ${log-status}"
    # Numbers are digits, action and log-status their words: a line of another field order does not match.
    text = ("parse @message /^\\s*(?<version>-|[0-9]+)\\s+(?<vpcId>\\S+)\\s+(?<srcAddr>\\S+)\\s+(?<dstAddr>\\S+)\\s+"
            "(?<startTime>-|[0-9]+)\\s+(?<action>ACCEPT|REJECT|-)\\s+(?<logStatus>OK|NODATA|SKIPDATA|-)\\s*$/\n| "
            + REMOTE.format(lo=WINDOW.since_s, hi=WINDOW.until_s))
    client = logs_client()
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-p"}, start_params(WINDOW, text=text))
        stub.add_response("get_query_results", complete([]), {"queryId": "q-p"})
        assert engine(client, fmt=fmt).run(q(REJECTS), WINDOW, {}).rows == ()
        stub.assert_no_pending_responses()


def test_queries_that_cannot_be_split_are_refused_at_their_position():
    with pytest.raises(InsightsUnsupportedError, match="line 1, column 1: limit before other commands"):
        engine(logs_client()).run(q("limit 5 | stats count(*)"), WINDOW, {})


# ------------------------------------------------------------------ answers produced by the local engine

class LocalLogs:
    """A logs client whose answers come from the local Insights engine over real files: each StartQuery is run
    locally when it is made, and its responses are queued on the Stubber just in time."""

    def __init__(self, ws: Workspace, tables: dict[str, str], row_cap: int = 10_000) -> None:
        self.client = logs_client()
        self.stub = Stubber(self.client)
        self.ws, self.tables, self.row_cap = ws, tables, row_cap
        self.calls: list[dict] = []
        self.client.meta.events.register("provide-client-params.logs.StartQuery", self._start)
        self.stub.activate()

    def _start(self, params: dict, **_: Any) -> dict:
        qid = f"q-{len(self.calls) + 1}"
        self.calls.append(dict(params))
        window = TimeWindow(datetime.fromtimestamp(params["startTime"], timezone.utc),
                            datetime.fromtimestamp(params["endTime"] + 1, timezone.utc))
        table = self.tables[params["logGroupNames"][0]]
        if "@log" in params["queryString"]:  # the format check: over the lines (@message) of the group
            lines = run_insights(self.ws.con, "fields @timestamp, @message, @logStream", table, window)
            self.ws.con.register("__lines", pa.table({
                **{c: pa.array([r[i] for r in lines.rows]) for i, c in enumerate(lines.columns)},
                "@log": pa.array([f"111122223333:{params['logGroupNames'][0]}"] * len(lines.rows), pa.string())}))
            self.ws.con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM __lines")
            self.ws.con.unregister("__lines")
            described = self.ws.con.execute("DESCRIBE lines").fetchall()
            res = run_insights(self.ws.con, params["queryString"], TableCatalog("lines", {r[0]: r[1] for r in described}),
                               None)
        else:
            res = run_insights(self.ws.con, params["queryString"], table, window)
        rows = [[{"field": c, "value": cw(v)} for c, v in zip(res.columns, row) if v is not None]
                for row in res.rows[:self.row_cap]]
        self.stub.add_response("start_query", {"queryId": qid}, {k: ANY for k in params})
        self.stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": qid})
        self.stub.add_response("get_query_results", complete(rows, scanned=float(1000 * len(res.rows)),
                                                              records=float(len(res.rows))), {"queryId": qid})
        return params


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    """Hand-made flow records over a day, with several sources, ports and times."""
    root = tmp_path_factory.mktemp("cloud-flows")
    rng = random.Random(11)
    recs = []
    for i in range(240):
        hour, minute = rng.randrange(24), rng.randrange(60)
        recs.append(record(srcaddr=f"198.51.100.{rng.randrange(40)}", dstport=rng.choice([22, 80, 443, 3389, 8080]),
                           action=rng.choice(["ACCEPT", "REJECT"]), bytes=rng.randrange(40, 5000),
                           packets=rng.randrange(1, 9), start=f"2026-11-10T{hour:02d}:{minute:02d}:{i % 60:02d}Z"))
    write_flow_log(root / "flows", recs)
    ws = Workspace()
    flowlogs.load_flow_logs(ws.con, files.discover(root / "flows", ("text",)), window=WINDOW)
    yield ws
    ws.close()


MERGE_CASES = [
    "stats count(*) as n, sum(bytes) as b, min(bytes) as lo, max(bytes) as hi, avg(packets) as mean by srcAddr",
    "stats count_distinct(dstPort) as ports, pct(bytes, 90) as p90, pct(bytes, 50) as p50 by srcAddr",
    "stats earliest(dstPort) as first_port, latest(dstPort) as last_port, count(*) as n by srcAddr",
    "stats sum(bytes) / count(*) as per_flow, count(dstPort) as c by action, bin(1h) as hour",
    'filter action = "REJECT" | stats count(*) as n by srcAddr | sort n desc, srcAddr asc | limit 3',
    "stats pct(bytes, 99) as p99, count_distinct(srcAddr) as sources",
    'filter dstPort in [22, 3389] | fields srcAddr as s, dstPort as p, bytes | sort bytes desc, s asc | limit 25',
    'fields srcAddr, @timestamp | filter bytes > 3000 | dedup srcAddr',
    'fields srcAddr, @timestamp | filter bytes > 4000 | dedup srcAddr | limit 5',
]


@pytest.mark.parametrize("text", MERGE_CASES)
def test_split_and_merged_answers_equal_the_whole_query(flows, text):
    fake = LocalLogs(flows, {"/vpc/flow": "flow_logs"}, row_cap=20)
    eng = engine(fake.client, row_cap=20, min_slice="20m")
    window = TimeWindow(datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 11, tzinfo=timezone.utc))
    got = eng.run(q(text, window=window), window, {})
    want = run_insights(flows.con, text, "flow_logs", window)
    if "limit 5" in text:
        assert len(fake.calls) == 1, "a limit under the row cap is never truncated"
    else:
        assert len(fake.calls) > 3, "the 20-row cap forced splits"
    assert not got.stats.truncated
    assert got.columns == want.columns and got.types == want.types
    norm = lambda rows: Counter(tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows)  # noqa: E731
    if "earliest" in text:  # ties in time may pick either value; the group keys and counts must agree
        assert {r[0]: r[3] for r in got.rows} == {r[0]: r[3] for r in want.rows}
    else:
        assert norm(got.rows) == norm(want.rows)
    if "sort" in text:
        assert got.rows == want.rows
    for call in fake.calls:  # the inclusive end: the last second of the slice, and the record's start filtered
        assert call["endTime"] - call["startTime"] + 1 in {int(d.total_seconds()) for d in
                                                            (timedelta(days=1) / 2**k for k in range(7))}
        assert f"startTime < {call['endTime'] + 1}" in call["queryString"]


class Concurrent:
    """A thread-safe fake client (Stubber is sequential) that counts the queries running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.started = 0

    def start_query(self, **kw: Any) -> dict:
        with self.lock:
            self.started += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            return {"queryId": f"q-{self.started}"}

    def get_query_results(self, **kw: Any) -> dict:
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return complete(results({"auditorG0": "192.0.2.1", "auditorP0": 1}))


def test_concurrency_is_capped():
    client = Concurrent()
    groups = tuple(f"/vpc/g{i}" for i in range(50 * 7))
    res = engine(client, groups=groups, concurrency=3).run(q(REJECTS), WINDOW, {})
    assert client.started == 7 and res.rows == (("192.0.2.1", 7),)
    assert client.peak == 3
