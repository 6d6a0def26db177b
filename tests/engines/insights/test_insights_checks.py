"""Each built-in check's query.insights agrees with its query.sql on the demo data: same columns, same types, same
rows, so report.sql runs unchanged whichever engine ran the first phase. And the generated parse clause reads
custom-format lines the way the flow-log reader does."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone

import pytest

from auditor import logformat
from auditor.builtins import builtins
from auditor.checks import load_builtin_checks
from auditor.config import load_config
from auditor.demo import generate
from auditor.engines.base import EngineContext
from auditor.engines.embedded import Workspace
from auditor.engines.insights.catalog import TableCatalog, insights_name
from auditor.engines.insights.compiler import compile_program
from auditor.engines.insights.local import LocalInsightsEngine
from auditor.engines.insights.parse_clause import (
    format_fields,
    needs_parse,
    parse_clause,
    parse_command,
)
from auditor.engines.insights.parser import Binary, Display, Field, Filter, Literal, Pipeline, Program, Stats, parse
from auditor.engines.sources import files, flowlogs
from auditor.models import Query, TimeWindow
from auditor.registry import Registry
from tests.support.flowdata import write_config

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
CHECKS = [s for s in builtins().checks if "query.insights" in s.queries]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    generate(root / "demo", date(2026, 11, 16), days=7)
    config = write_config(root, """
        sources:
          flow_logs: demo/flowlogs
          cloudtrail: demo/cloudtrail
          inventory: demo/inventory
        """)
    loaded = load_config(config)
    ws = Workspace()
    local = builtins().engines.get("local").create(EngineContext.of(ws, loaded))
    local.prepare({"flow_logs": WINDOW, "cloudtrail": WINDOW})
    yield loaded, local, LocalInsightsEngine(local)
    ws.close()


# The demo plants fewer rows of the event checks that a week holds a handful of (issue 21's signals).
MIN_ROWS = {"logging_disabled": 3, "nacl_changes": 4}


def test_every_engine_check_ships_a_query_insights_or_says_why_not():
    engine_checks = {s.id for s in builtins().checks if s.dialects and "insights" not in s.meta.unsupported}
    assert {s.id for s in CHECKS} == engine_checks == {"top_rejected_sources", "exposed_well_known_ports",
                                                        "unused_sg_rules", "sg_changes", "logging_disabled",
                                                        "nacl_changes"}
    for spec in CHECKS:
        assert spec.runs_on("insights") and spec.runs_on("trino")
    unsupported = {s.id for s in builtins().checks if "insights" in s.meta.unsupported}
    assert unsupported == {"probing_sources"}
    assert not any("query.insights" in builtins().checks.get(c).queries for c in unsupported)


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_insights_twin_agrees_with_sql(engines, spec):
    loaded, local, insights = engines
    params = {**spec.validate_params({}), "sensitive_ports": tuple(loaded.config.sensitive_ports)}
    tables = frozenset(t for t in spec.meta.needs if t in ("flow_logs", "cloudtrail"))
    sql = local.run(Query(spec.id, "query", spec.queries["query.sql"], "trino", tables, WINDOW, params), WINDOW, params)
    ins = insights.run(Query(spec.id, "query", spec.queries["query.insights"], "insights", tables, WINDOW, params),
                       WINDOW, params)
    assert ins.columns == sql.columns
    assert ins.types == sql.types
    assert len(sql.rows) >= MIN_ROWS.get(spec.id, 6), "the demo data exercises the check"
    assert Counter(ins.rows) == Counter(sql.rows)
    if "ORDER BY" in spec.queries["query.sql"]:
        assert ins.rows == sql.rows  # both sort the same way


def test_the_twins_run_the_report_phase_to_the_same_rows(engines):
    loaded, local, insights = engines
    spec = builtins().checks.get("exposed_well_known_ports")
    params = {**spec.validate_params({}), "sensitive_ports": tuple(loaded.config.sensitive_ports)}
    ws = local.workspace
    ws.load_inventory(loaded.resolve(loaded.config.sources.inventory.path))
    out = []
    for engine, name in ((local, "query.sql"), (insights, "query.insights")):
        q = Query(spec.id, "query", spec.queries[name], engine.dialect, frozenset({"flow_logs"}), WINDOW, params)
        ws.register_result(engine.run(q, WINDOW, params))
        out.append(ws.execute(spec.queries["report.sql"], {"since": WINDOW.since, "until": WINDOW.until,
                                                           "since_s": WINDOW.since_s, "until_s": WINDOW.until_s,
                                                           **params}, name="report").rows)
    assert out[0] == out[1] and any(r[-1] == "high" for r in out[0])


# ------------------------------------------------------------------------------------------------ parse clause

def test_insights_names_follow_cloudwatch_for_the_default_format():
    assert [insights_name(f.name) for f in logformat.FIELDS if f.version == 2] == [
        "version", "accountId", "interfaceId", "srcAddr", "dstAddr", "srcPort", "dstPort", "protocol", "packets",
        "bytes", "startTime", "endTime", "action", "logStatus"]
    assert insights_name("pkt-srcaddr") == "pktSrcAddr" and insights_name("flow-direction") == "flowDirection"
    assert insights_name("tgw-src-eni") == "tgwSrcEni" and insights_name("reject-reason") == "rejectReason"


def test_parse_clause_text():
    assert not needs_parse(None) and not needs_parse(logformat.DEFAULT_FORMAT)
    assert needs_parse("${version} ${vpc-id} ${srcaddr}")
    assert parse_clause("${version} ${vpc-id} ${srcaddr}") == \
        r"parse @message /^\s*(?<version>-|[0-9]+)\s+(?<vpcId>\S+)\s+(?<srcAddr>\S+)\s*$/"
    assert parse(parse_clause("${version} ${vpc-id}")).parts[0].commands == (parse_command("${version} ${vpc-id}"),)
    with pytest.raises(ValueError, match="did you mean 'srcaddr'"):
        format_fields("${version} ${srcadr}")


@pytest.mark.parametrize("name", ["v5-custom-service-traffic-path-flow-direction.log", "v3-custom-transit-gateway.log",
                                  "v3-custom-tcp-flag-sequence.log"])
def test_generated_parse_clause_reads_custom_lines_like_the_reader(corpus, name):
    path = corpus / "aws-docs" / "vpc-flow-log-record-examples" / name
    header, *lines = [line for line in path.read_text().splitlines() if line.strip()]
    log_format = " ".join("${" + f + "}" for f in header.split())
    ws = Workspace()
    try:
        # The reader's view of the file ...
        flowlogs.load_flow_logs(ws.con, files.discover(path, ("text",)), window=TimeWindow(
            datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)))
        columns = [logformat.parse_log_format(log_format)]
        cur = ws.con.execute("SELECT * FROM flow_logs")
        names = [d[0] for d in cur.description]
        expected = [[None if r[names.index(c)] is None else str(r[names.index(c)]) for c in columns[0]]
                    for r in cur.fetchall()]
        # ... and the generated clause's, over the raw lines as CloudWatch would hold them in @message.
        ws.con.execute('CREATE TABLE raw ("@message" VARCHAR)')
        ws.con.executemany("INSERT INTO raw VALUES (?)", [[line] for line in lines])
        shown = format_fields(log_format)
        pipeline = Pipeline(0, (parse_command(log_format), Display(0, tuple(Field(0, n) for n in shown))))
        compiled = compile_program(Program((pipeline,)), TableCatalog("raw", {"@message": "VARCHAR"}))
        got = [[None if v in (None, "-") else v for v in row]
               for row in ws.con.execute(compiled.sql, dict(compiled.params)).fetchall()]
    finally:
        ws.close()
    assert len(got) == len(lines) >= 2
    # the reader turns millisecond starts into seconds and drops a "#comment"; these samples have neither
    assert sorted(map(repr, got)) == sorted(map(repr, expected))


def _keeps_only_ok_records(pipeline: Pipeline) -> bool:
    """Whether a filter before the pipeline's stats (or anywhere, in an event query) requires logStatus = "OK"
    in a conjunction, so NODATA/SKIPDATA records (whose fields are "-") never count."""
    commands = pipeline.commands
    head = commands[:next((i for i, c in enumerate(commands) if isinstance(c, Stats)), len(commands))]

    def required(cond) -> bool:
        if isinstance(cond, Binary) and cond.op == "and":
            return required(cond.left) or required(cond.right)
        return (isinstance(cond, Binary) and cond.op == "=" and {type(cond.left), type(cond.right)} == {Field, Literal}
                and {getattr(cond.left, "name", None), getattr(cond.right, "name", None)} >= {"logStatus"}
                and "OK" in (getattr(cond.left, "value", None), getattr(cond.right, "value", None)))

    return any(isinstance(c, Filter) and required(c.condition) for c in head)


def flow_log_twins():
    reg = Registry("check")
    load_builtin_checks(reg)
    return [(spec.id, name, text) for spec in reg if "flow_logs" in spec.meta.needs
            for name, text in spec.queries.items() if name.endswith(".insights")]


@pytest.mark.parametrize("check_id,name,text", flow_log_twins(), ids=lambda v: v if isinstance(v, str) and "\n" not in v else "")
def test_every_flow_log_insights_twin_keeps_only_ok_records(check_id, name, text):
    """A remote count(field) counts a flow log's "-" as a value (NODATA records): every flow-log query twin filters
    logStatus = "OK" (docs/insights.md), in each part of a union."""
    for pipeline in parse(text).parts:
        assert _keeps_only_ok_records(pipeline), f"{check_id}/{name} lacks filter logStatus = \"OK\""


def test_the_ok_filter_test_can_fail():
    assert not _keeps_only_ok_records(parse('filter action = "REJECT" | stats count(*) by srcAddr').parts[0])
    assert not _keeps_only_ok_records(parse('filter action = "REJECT" or logStatus = "OK" | stats count(*)').parts[0])
    assert not _keeps_only_ok_records(parse('stats count(*) by srcAddr | filter logStatus = "OK"').parts[0])
    assert _keeps_only_ok_records(parse('filter logStatus = "OK" and action = "REJECT" | stats count(*)').parts[0])


def test_the_flow_log_twins_are_all_found():
    assert {(c, n) for c, n, _ in flow_log_twins()} == {
        ("exposed_well_known_ports", "query.insights"), ("top_rejected_sources", "query.insights"),
        ("top_rejected_sources", "chart.insights"), ("unused_sg_rules", "query.insights")}
