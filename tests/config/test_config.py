"""Config loading: strict schema, errors that name file:line:column and the fix."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from auditor.builtins import builtins
from auditor.config import DEFAULT_SENSITIVE_PORTS, load_config
from auditor.errors import ConfigError
from auditor.plan import plan_run
from auditor.timeparse import default_window

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def plan(path: Path):
    loaded = load_config(path)
    return plan_run(loaded, builtins().checks, default_window(NOW), NOW)


def test_unknown_key_names_file_line_column_and_suggests(tmp_path):
    p = write(tmp_path, """
        engine: local
        sources:
          flow_logs: logs
        delivery_lagg: 2d
        """)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:4:1: unknown key 'delivery_lagg'"), msg
    assert "did you mean 'delivery_lag'" in msg


def test_nested_unknown_key_position(tmp_path):
    p = write(tmp_path, """
        sources:
          flow_logs:
            path: logs
            fromat: "${version}"
        """)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert ":4:5: unknown key 'fromat' (did you mean 'format'?)" in str(exc.value)


def test_unknown_check_is_an_error_with_did_you_mean(tmp_path):
    p = write(tmp_path, """
        sources: {flow_logs: logs}
        checks:
          top_rejected_source: {top_n: 5}
        """)
    with pytest.raises(ConfigError) as exc:
        plan(p)
    assert ":3:3: unknown check 'top_rejected_source' (did you mean 'top_rejected_sources'?)" in str(exc.value)


def test_bad_check_parameter_points_at_it(tmp_path):
    p = write(tmp_path, """
        sources: {flow_logs: logs}
        checks:
          top_rejected_sources:
            top_n: many
            scan_portz: 3
        """)
    with pytest.raises(ConfigError) as exc:
        plan(p)
    msg = str(exc.value)
    assert f"{p}:4:" in msg or f"{p}:5:" in msg
    assert "top_n" in msg or "scan_portz" in msg


def test_unknown_check_parameter_suggests(tmp_path):
    p = write(tmp_path, """
        sources: {flow_logs: logs}
        checks:
          top_rejected_sources: {scan_portz: 3}
        """)
    with pytest.raises(ConfigError) as exc:
        plan(p)
    assert "unknown key 'scan_portz' (did you mean 'scan_ports'?)" in str(exc.value)
    assert f"{p}:3:" in str(exc.value)


def test_wrong_type_names_the_setting(tmp_path):
    p = write(tmp_path, """
        table_limit: lots
        """)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert f"{p}:1:14: table_limit:" in str(exc.value)


def test_bad_log_format_field_suggests(tmp_path):
    p = write(tmp_path, """
        sources:
          flow_logs: {path: logs, format: "${version} ${acount-id}"}
        """)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "account-id" in str(exc.value) and f"{p}:2:" in str(exc.value)


def test_yaml_syntax_error_has_position(tmp_path):
    p = write(tmp_path, "sources: [flow_logs\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value).startswith(f"{p}:2:")


def test_missing_config_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_and_shorthand_sources(tmp_path):
    p = write(tmp_path, """
        sources:
          flow_logs: data/flows
        """)
    loaded = load_config(p)
    cfg = loaded.config
    assert cfg.engine == "local"
    assert cfg.sources.flow_logs.path == Path("data/flows")
    assert loaded.resolve(cfg.sources.flow_logs.path) == tmp_path.resolve() / "data" / "flows"
    assert cfg.sensitive_ports == DEFAULT_SENSITIVE_PORTS
    assert {22, 3389, 3306, 27017, 11211, 137, 139} <= set(cfg.sensitive_ports)
    assert cfg.checks is None


def test_missing_sources_skip_checks_and_say_so(tmp_path):
    p = write(tmp_path, "sources: {}\n")
    result = plan(p)
    assert result.checks, "every built-in check is planned"
    for pc in result.checks:
        assert pc.skip_reason and "sources." in pc.skip_reason
    assert result.scans == {}


def test_absent_checks_means_all_builtins_with_defaults(tmp_path):
    p = write(tmp_path, "sources: {flow_logs: x, cloudtrail: y, inventory: z}\n")
    result = plan(p)
    assert {pc.spec.id for pc in result.checks} == set(builtins().checks.names())
    top = next(pc for pc in result.checks if pc.spec.id == "top_rejected_sources")
    assert top.params["top_n"] == 20 and top.params["min_flows"] == 100 and top.params["scan_ports"] == 10


def test_disabled_check_is_skipped(tmp_path):
    p = write(tmp_path, """
        sources: {flow_logs: x}
        checks:
          top_rejected_sources: {enabled: false}
        """)
    (pc,) = plan(p).checks
    assert pc.skip_reason.startswith("disabled")


@pytest.mark.parametrize("limit, ok", [("4GB", True), ("1.5 GB", True), ("500MiB", True), ("80%", True),
                                       ("banana", False), ("100", False), ("0GB", False), ("120%", False)])
def test_memory_limit_is_a_size_duckdb_takes(tmp_path, limit, ok):
    path = write(tmp_path, f"duckdb: {{memory_limit: '{limit}'}}\n")
    if ok:
        assert load_config(path).config.duckdb.memory_limit == limit
    else:
        with pytest.raises(ConfigError, match=r"config.yaml:1:\d+: duckdb.memory_limit: "):
            load_config(path)


def test_yaml_anchors_that_stay_small_are_fine_and_a_merge_key_is_no_duplicate(tmp_path):
    path = write(tmp_path, "sensitive_ports: &ports [22, 3389]\nchecks:\n"
                           "  exposed_well_known_ports: &e {allowed_public_ports: *ports}\n"
                           "  top_rejected_sources: {<<: {top_n: 5}, min_flows: 3}\n")
    config = load_config(path).config
    assert config.checks["exposed_well_known_ports"]["allowed_public_ports"] == [22, 3389]
    assert config.checks["top_rejected_sources"] == {"top_n": 5, "min_flows": 3}
