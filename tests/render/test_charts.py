"""Charts: SVG drawn by matplotlib from the record, deterministic, readable as text, and inert."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from auditor.errors import RenderError
from auditor.models import TimeWindow
from auditor.render import charts
from auditor.render.charts import (
    _checked_svg,
    exposed_ports_chart,
    rejected_flows_chart,
    sparkline,
)

WEEK = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
TWO_DAYS = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 11, tzinfo=timezone.utc))


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(el.itertext()).strip() for el in root.iter() if el.tag.endswith("}text")]


def daily_rows() -> list[dict]:
    """Eight sources over a week: s0 has the most flows, s7 the fewest; s0 is silent on Wednesday."""
    rows = []
    for day in range(7):
        for i in range(8):
            if i == 0 and day == 2:
                continue
            rows.append({"bucket": iso(WEEK.since + timedelta(days=day)), "srcaddr": f"198.51.100.{i}",
                         "flows": (8 - i) * 10})
    return rows


def test_rejected_flows_stack_the_top_five_sources_and_group_the_rest():
    chart = rejected_flows_chart(daily_rows(), WEEK)
    labels = texts(chart.svg)
    for i in range(5):
        assert f"198.51.100.{i}" in labels
    assert "198.51.100.5" not in labels and "all other sources" in labels
    # Totals, largest first: s1 7 days x 70 beats s0's 6 x 80 (silent on Wednesday); other = (30 + 20 + 10) x 7.
    assert chart.alt == ("Stacked bar chart of rejected flows per day, 7 days. 198.51.100.1: 490 flows; "
                         "198.51.100.0: 480 flows; 198.51.100.2: 420 flows; 198.51.100.3: 350 flows; "
                         "198.51.100.4: 280 flows; all other sources: 420 flows.")
    assert "Mon 11-09" in labels and "Sun 11-15" in labels and "day (UTC)" in labels


def test_rejected_flows_rank_by_total_and_order_ties_by_address():
    rows = [{"bucket": iso(WEEK.since), "srcaddr": s, "flows": 5} for s in ("10.0.0.9", "10.0.0.1")]
    rows.append({"bucket": iso(WEEK.since), "srcaddr": "10.0.0.5", "flows": 50})
    assert rejected_flows_chart(rows, WEEK).alt.split(". ", 1)[1] == (
        "10.0.0.5: 50 flows; 10.0.0.1: 5 flows; 10.0.0.9: 5 flows.")


def test_short_windows_are_charted_per_hour_with_every_hour_present():
    rows = [{"bucket": iso(TWO_DAYS.since + timedelta(hours=5)), "srcaddr": "203.0.113.45", "flows": 7},
            {"bucket": iso(TWO_DAYS.until + timedelta(hours=1)), "srcaddr": "203.0.113.45", "flows": 1000}]
    chart = rejected_flows_chart(rows, TWO_DAYS)
    # 48 hourly bars, the one outside the window left out; ticks at midnight and noon.
    assert chart.alt == "Stacked bar chart of rejected flows per hour, 48 hours. 203.0.113.45: 7 flows."
    labels = texts(chart.svg)
    assert "11-09 00:00" in labels and "11-10 00:00" in labels and labels.count("12:00") == 2
    assert "hour starting (UTC)" in labels


def test_no_rows_no_chart():
    assert rejected_flows_chart([], WEEK) is None
    assert rejected_flows_chart([{"bucket": None, "srcaddr": "x", "flows": 1}], WEEK) is None
    assert sparkline([]) is None
    assert exposed_ports_chart([{"dstport": 5432, "protocol": 6, "public_sources": 0, "severity": None}]) is None


def test_charts_are_deterministic_and_carry_no_date():
    first = rejected_flows_chart(daily_rows(), WEEK).svg
    assert rejected_flows_chart(daily_rows(), WEEK).svg == first
    assert sparkline([1, 2, 3]).svg == sparkline([1, 2, 3]).svg
    assert b"<dc:date>" not in first and b"<metadata>" not in first and b"DOCTYPE" not in first


def test_attacker_controlled_labels_stay_inert_text():
    evil = ["<script>alert(1)</script>", "$\\frac{a}{b}$", "_hidden", "a\x00b\x1bc", "x" * 80]
    rows = [{"bucket": iso(WEEK.since), "srcaddr": s, "flows": 100 - i} for i, s in enumerate(evil)]
    chart = rejected_flows_chart(rows, WEEK)
    root = ET.fromstring(chart.svg)
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    assert not tags & {"script", "foreignObject", "image", "a"}
    assert not [k for el in root.iter() for k in el.attrib if k.lower().startswith("on")]
    labels = texts(chart.svg)
    assert "<script>alert(1)</script>" in labels  # drawn literally, escaped in the XML
    assert b"<script" not in chart.svg
    assert "$\\frac{a}{b}$" in labels  # not typeset as mathtext
    assert "_hidden" in [label.lstrip("\u200b") for label in labels]  # a leading "_" does not hide the entry
    assert "abc" in labels  # control characters dropped
    assert "x" * 39 + "\u2026" in labels


@pytest.mark.parametrize("svg, reason", [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "script"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "event handler"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
     b'<use xlink:href="http://169.254.169.254/latest/meta-data/#x"/></svg>', "outside itself"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(file:///etc/passwd)"/></svg>', "outside itself"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>', "foreignObject"),
    (b"<svg", "well-formed"),
])
def test_the_svg_check_refuses_anything_that_could_run_or_load(svg, reason):
    with pytest.raises(RenderError, match=reason):
        _checked_svg(svg)
    ok = b'<svg xmlns="http://www.w3.org/2000/svg"><defs><pattern id="h"/></defs><rect style="fill: url(#h)"/></svg>'
    assert _checked_svg(ok) == ok


def test_sparkline_keeps_the_last_twelve_runs():
    values = list(range(20))
    chart = sparkline(values)
    assert chart.alt == "Trend over the last 12 runs: " + ", ".join(str(v) for v in range(8, 20)) + " (this run last)."
    assert sparkline([4]).alt == "Trend over the last 1 run: 4 (this run last)."
    assert (chart.width_mm, chart.height_mm) == (22.0, 5.5)
    assert chart.data_uri.startswith("data:image/svg+xml;base64,")


def test_exposed_ports_sum_public_sources_and_take_the_worst_severity():
    rows = [
        {"interface_id": "eni-a", "dstport": 22, "protocol": 6, "public_sources": 2, "severity": "high"},
        {"interface_id": "eni-b", "dstport": 22, "protocol": 6, "public_sources": 1, "severity": "medium"},
        {"interface_id": "eni-a", "dstport": 443, "protocol": 6, "public_sources": 900, "severity": "info"},
        {"interface_id": "eni-c", "dstport": 3389, "protocol": 6, "public_sources": 0, "severity": "medium"},
        {"interface_id": "eni-d", "dstport": 5432, "protocol": 6, "public_sources": 0, "severity": None},
        {"interface_id": "eni-e", "dstport": 53, "protocol": 17, "public_sources": 4, "severity": None},
    ]
    chart = exposed_ports_chart(rows)
    assert chart.alt == ("Bar chart of public sources per exposed port: SSH (tcp/22): 3 (high); RDP (tcp/3389): 0 "
                         "(medium); HTTPS (tcp/443): 900 (info); DNS (udp/53): 4 (no finding).")
    labels = texts(chart.svg)
    assert "open to the world, no public traffic \u00b7 medium" in labels
    assert "3 public sources \u00b7 high" in labels
    # Taller with more ports, capped at MAX_PORT_BARS.
    many = [{"dstport": p, "protocol": 6, "public_sources": p, "severity": "high"} for p in range(1, 30)]
    capped = exposed_ports_chart(many)
    assert re.search(r"\((\d+) more ports are in the table\)", capped.alt).group(1) == str(29 - charts.MAX_PORT_BARS)
    assert capped.height_mm > chart.height_mm


def test_a_chart_query_that_pooled_its_other_sources_is_drawn_as_one_other_band():
    # The shape of auditor/checks/top_rejected_sources/chart.sql: the query keeps its top five by name.
    rows = [{"bucket": iso(WEEK.since), "source": "203.0.113.45", "flows": 466},
            {"bucket": iso(WEEK.since), "source": "other", "flows": 24},
            {"bucket": iso(WEEK.since + timedelta(days=3)), "source": "other", "flows": 6}]
    chart = rejected_flows_chart(rows, WEEK)
    assert chart.alt.endswith("203.0.113.45: 466 flows; all other sources: 30 flows.")
    assert "all other sources" in texts(chart.svg) and "other" not in texts(chart.svg)
