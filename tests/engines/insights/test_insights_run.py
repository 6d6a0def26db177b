"""A whole run with Logs Insights sources (CloudWatch answering through a stubbed client, from the local Insights
engine over the same files) gives the findings, rows and statuses of the run on the local engine; and the engine
is registered and configured from config.yaml."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from auditor.builtins import EngineFactory, Registries, builtins
from auditor.checks import load_builtin_checks
from auditor.config import InsightsSourceSpec, load_config
from auditor.demo import generate
from auditor.engines.base import EngineContext
from auditor.engines.embedded import Workspace
from auditor.engines.insights import cloud
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.errors import ConfigError
from auditor.history import sources_key
from auditor.models import Status, TimeWindow
from auditor.pipeline import run_audit
from auditor.render.charts import rejected_flows_chart
from tests.engines.insights.test_insights_cloud import LocalLogs
from tests.support.flowdata import write_config

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def test_a_run_with_insights_sources_gives_the_local_findings(tmp_path):
    generate(tmp_path / "demo", date(2026, 11, 16), days=7)
    (tmp_path / "local").mkdir()
    (tmp_path / "cloud").mkdir()
    local_cfg = write_config(tmp_path / "local", """
        sources:
          flow_logs: ../demo/flowlogs
          cloudtrail: ../demo/cloudtrail
          inventory: ../demo/inventory
        """)
    cloud_cfg = write_config(tmp_path / "cloud", """
        sources:
          flow_logs: {engine: insights, log_groups: [/vpc/flow-logs]}
          cloudtrail: {engine: insights, log_groups: [/aws/cloudtrail]}
          inventory: ../demo/inventory
        insights: {max_concurrency: 1}
        """)
    local_run = run_audit(load_config(local_cfg), WINDOW, out_dir=tmp_path / "out-local", clock=lambda: NOW,
                          formats=("json",), run_id="local")

    # CloudWatch's side: the same files in a local workspace, answering through the stubbed client.
    ws = Workspace()
    wide = TimeWindow(WINDOW.since - timedelta(days=7), WINDOW.until)
    flowlogs.load_flow_logs(ws.con, files.discover(tmp_path / "demo" / "flowlogs", ("text",)), window=wide)
    cloudtrail.load_cloudtrail(ws.con, files.discover(tmp_path / "demo" / "cloudtrail", ("json",),
                                              skip_dirs=("CloudTrail-Digest",)), window=wide)
    fake = LocalLogs(ws, {"/vpc/flow-logs": "flow_logs", "/aws/cloudtrail": "cloudtrail"})
    reg = Registries()
    reg.engines.register("local", builtins().engines.get("local"))
    reg.engines.register("insights", EngineFactory("insights", "insights",
                                                   lambda context: cloud.create(context, client=fake.client)))
    load_builtin_checks(reg.checks)
    for fmt in builtins().formats:
        reg.formats.register(fmt.name, fmt)
    cloud_run = run_audit(load_config(cloud_cfg), WINDOW, out_dir=tmp_path / "out-cloud", clock=lambda: NOW,
                          formats=("json",), run_id="cloud", registries=reg)
    ws.close()

    local_checks = {c.check_id: c for c in local_run.record.checks}
    cloud_checks = {c.check_id: c for c in cloud_run.record.checks}
    assert set(local_checks) == set(cloud_checks)
    for check_id, lc in local_checks.items():
        cc = cloud_checks[check_id]
        if "insights" in builtins().checks.get(check_id).meta.unsupported:
            # probing_sources joins flow logs with CloudTrail, which Logs Insights cannot: skipped, saying why
            assert cc.status is Status.SKIPPED and "cannot run on the insights engine" in " ".join(cc.notes)
            continue
        assert cc.status == lc.status and cc.error is None, (check_id, cc.error)
        assert sorted((f.severity.value, f.title, f.fingerprint) for f in cc.findings) == \
            sorted((f.severity.value, f.title, f.fingerprint) for f in lc.findings), check_id
        assert Counter(map(repr, cc.rows)) == Counter(map(repr, lc.rows)), check_id
    assert sum(len(c.findings) for c in cloud_checks.values()) > 10
    # The "rejected flows per day" chart: chart.insights on CloudWatch, chart.sql locally, drawn the same.
    local_chart = rejected_flows_chart(local_checks["top_rejected_sources"].chart, WINDOW)
    cloud_chart = rejected_flows_chart(cloud_checks["top_rejected_sources"].chart, WINDOW)
    assert local_chart is not None and cloud_chart is not None
    assert cloud_chart.alt == local_chart.alt and cloud_chart.svg == local_chart.svg
    assert "chart" in {q.name for q in cloud_checks["top_rejected_sources"].queries}
    engines = {q.engine for c in cloud_checks.values() for q in c.queries}
    assert engines == {"insights", "embedded"}
    assert any(n.startswith("Logs Insights:") for c in cloud_checks.values() for n in c.notes)
    assert all(call["endTime"] == WINDOW.until_s - 1 or call["endTime"] < WINDOW.until_s for call in fake.calls)


def test_the_insights_engine_is_registered_and_configured_from_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    factory = builtins().engines.get("insights")
    assert (factory.name, factory.dialect) == ("insights", "insights")
    cfg = write_config(tmp_path, """
        sources:
          flow_logs: {engine: insights, log_groups: [/vpc/a, /vpc/b], format: "${version} ${srcaddr} ${start}"}
          cloudtrail: trail
        aws: {regions: [eu-west-1]}
        insights: {max_concurrency: 2, min_slice: 30m, timeout: 5m}
        pricing: {insights_usd_per_gb: 0.0076}
        """)
    engine = factory.create(EngineContext.of(Workspace(), load_config(cfg)))
    assert engine.client.meta.region_name == "eu-west-1"
    assert set(engine.sources) == {"flow_logs"} and engine.sources["flow_logs"].group_names == ("/vpc/a", "/vpc/b")
    assert engine.min_slice == timedelta(minutes=30) and engine.timeout == 300 and engine.price_per_gb == 0.0076
    engine.close()


def test_insights_settings_are_validated_where_they_are_written(tmp_path):
    for body, message in [
        ('flow_logs: {engine: insights, log_groups: [/vpc/a], format: "${version} ${srcadr}"}',
         "did you mean 'srcaddr'"),
        ("flow_logs: {engine: insights, log_groups: []}", "log_groups"),
        # A log group's own format is validated where it is written, with its line.
        ('flow_logs:\n    engine: insights\n    log_groups:\n      - /vpc/default\n'
         '      - {name: /vpc/custom, format: "${version} ${vpc-idd}"}', r"config.yaml:6:.*did you mean 'vpc-id'"),
        ("flow_logs: {engine: insights, log_groups: [/vpc/a, {name: /vpc/a}]}", "listed twice"),
        ("flow_logs: {engine: insights, log_groups: [{name: /vpc/a, fromat: x}]}", r"config.yaml:2:.*unknown key 'fromat'"),
        ("flow_logs: {engine: insights, log_groups: ['vpc flow']}", "log_groups"),
    ]:
        cfg = write_config(tmp_path, f"sources:\n  {body}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(cfg)
    cfg = write_config(tmp_path, "insights: {min_slice: an hour}\n")
    with pytest.raises(ConfigError, match="config.yaml:1:.*not a duration"):
        load_config(cfg)


def test_log_groups_take_a_format_each(tmp_path):
    cfg = write_config(tmp_path, """
        sources:
          flow_logs:
            engine: insights
            format: "${version} ${srcaddr} ${start}"
            log_groups:
              - /vpc/inherits
              - {name: /vpc/default, format: "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"}
              - {name: /vpc/v5, format: "${version} ${vpc-id} ${srcaddr} ${start}"}
        """)
    spec = load_config(cfg).config.sources.flow_logs
    assert spec.group_names == ("/vpc/inherits", "/vpc/default", "/vpc/v5")
    assert [spec.group_format(g) for g in spec.log_groups][0] == "${version} ${srcaddr} ${start}"
    engine = cloud.CloudInsightsEngine(object(), sources={"flow_logs": spec}, settings=load_config(cfg).config.insights)
    batches = engine.batches("flow_logs")
    # One batch per format; the default format gets no parse clause (CloudWatch discovers its fields).
    assert [(b.groups, bool(b.prefix)) for b in batches] == [
        (("/vpc/inherits",), True), (("/vpc/default",), False), (("/vpc/v5",), True)]
    engine.close()


def test_log_groups_without_a_format_keep_the_history_comparable():
    """The sources key (which runs are compared) of a config written before log groups took a format is unchanged:
    a bare log group dumps as its name."""
    spec = InsightsSourceSpec(engine="insights", log_groups=["/vpc/a", "/vpc/b"])
    assert sources_key(spec) == sources_key({"engine": "insights", "log_groups": ["/vpc/a", "/vpc/b"], "format": None})
    custom = InsightsSourceSpec(engine="insights", log_groups=["/vpc/a", {"name": "/vpc/b", "format": "${version}"}])
    assert sources_key(custom) != sources_key(spec)
    assert custom.model_dump(mode="json")["log_groups"] == ["/vpc/a", {"name": "/vpc/b", "format": "${version}"}]
