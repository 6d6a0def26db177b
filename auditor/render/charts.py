"""The report's charts: small SVG images drawn with matplotlib, embedded as ``data:`` URIs.

Each function is pure: the same data gives the same bytes (a fixed ``svg.hashsalt``, no date and
no creator in the metadata). The charts are built from log data an attacker can write to (a source
address is whatever the flow log says), so:

- labels are cleaned before matplotlib sees them (``$`` would start mathtext, control characters
  and very long strings are dropped or cut);
- text goes out as ``<text>`` elements, XML-escaped by matplotlib's SVG writer;
- ``_checked_svg`` parses every image and refuses one with a script, an event handler, a
  ``foreignObject`` or a reference to anything outside itself;
- the templates embed the image as ``<img src="data:image/svg+xml;base64,...">``: a browser never
  runs scripts in an image, and WeasyPrint's URL fetcher accepts ``data:`` URLs, which load nothing.

Every chart reads in grayscale: series differ by gray level and hatching, and severities use the
same grays as the report's badges.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from auditor import formatting as fmt
from auditor.errors import RenderError
from auditor.models import Severity, TimeWindow, utc

TOP_SOURCES = 5  # sources stacked by name; the rest are one "other" band
SPARKLINE_RUNS = 12
HOURLY_MAX = timedelta(days=3)  # windows up to 3 days are charted per hour, longer ones per day
MAX_PORT_BARS = 12
LABEL_CHARS = 40
POOLED = "other"  # the source name a chart query gives the flows of all but its top sources

_MM = 1 / 25.4  # inches per millimetre: matplotlib sizes figures in inches
_INK = "#111111"
# Darkest at the bottom of the stack (the biggest source), lighter above; "other" is white, hatched.
# Line hatches only: a dotted hatch is hundreds of little circles per tile, slow to print.
_SERIES_FILLS = ("#1a1a1a", "#5c5c5c", "#9a9a9a", "#cfcfcf", "#ffffff")
_SERIES_HATCHES = ("", "", "", "", "////")
_OTHER_FILL, _OTHER_HATCH = "#ffffff", "xx"
# The same grays as the severity badges in print.css.
_SEVERITY_FILLS = {Severity.CRITICAL: "#000000", Severity.HIGH: "#4d4d4d", Severity.MEDIUM: "#c4c4c4",
                   Severity.LOW: "#ffffff", Severity.INFO: "#ffffff"}

_RC = {
    "svg.hashsalt": "auditor-report",  # element IDs from a fixed salt, not random ones
    "svg.fonttype": "none",  # <text> elements: 3x faster to print than glyph outlines, and searchable in the PDF
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same output on every machine
    "font.size": 6.5,
    "axes.linewidth": 0.5,
    "axes.edgecolor": _INK,
    "axes.labelcolor": _INK,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "xtick.major.width": 0.5,
    "ytick.major.width": 0.5,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "hatch.linewidth": 0.5,
    "hatch.color": _INK,
    "legend.frameon": False,
    "path.simplify": False,
}


@dataclass(frozen=True)
class Chart:
    """One chart: SVG bytes, a text equivalent for readers and screen readers, and its printed size."""

    svg: bytes
    alt: str
    width_mm: float
    height_mm: float

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def _styled(fn):
    """Run a chart function under the report's matplotlib settings (ticks and fonts are set when created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper


@_styled
def rejected_flows_chart(rows: Iterable[Mapping[str, Any]], window: TimeWindow, *,
                         top: int = TOP_SOURCES) -> Chart | None:
    """Rejected flows per hour (per day for windows over 3 days), the top ``top`` sources stacked.

    ``rows`` come from the check's chart query: ``{bucket, source, flows}`` where the query already
    pooled all but its top sources as ``source = 'other'``, or ``{bucket, srcaddr, flows}`` per source,
    pooled here. Buckets the query did not return (no rejected flow then) are drawn as zero, so the
    time axis covers the whole window.
    """
    step = timedelta(hours=1) if window.duration <= HOURLY_MAX else timedelta(days=1)
    totals: dict[str, float] = defaultdict(float)
    cells: dict[tuple[datetime, str], float] = defaultdict(float)
    pooled: dict[datetime, float] = defaultdict(float)  # the query's own "other" band
    for row in rows:
        when = _as_time(row.get("bucket"))
        prepooled = "srcaddr" not in row and row.get("source") == POOLED
        source = row.get("srcaddr", row.get("source"))
        flows = _as_number(row.get("flows"))
        if when is None or source is None or flows is None or not window.contains(when):
            continue
        if prepooled:
            pooled[_floor(when, step)] += flows
            continue
        source = str(source)
        cells[(_floor(when, step), source)] += flows
        totals[source] += flows
    if not totals and not pooled:
        return None
    ranked = sorted(totals, key=lambda s: (-totals[s], s))
    named, rest = ranked[:top], set(ranked[top:])
    buckets = _buckets(window, step)
    series: list[tuple[str, list[float]]] = [(s, [cells.get((b, s), 0.0) for b in buckets]) for s in named]
    if rest or pooled:
        other = [pooled.get(b, 0.0) + sum(v for (b2, s), v in cells.items() if b2 == b and s in rest) for b in buckets]
        # One label whether the chart query pooled the rest (chart.sql) or gave every source (chart.insights, which
        # cannot pool): the report looks the same whichever engine ran it.
        series.append(("all other sources", other))
    has_other = bool(rest or pooled)

    width, height = 176.0, 62.0
    fig, ax = _figure(width, height)
    positions = list(range(len(buckets)))
    bottom = [0.0] * len(buckets)
    handles = []
    for i, (label, values) in enumerate(series):
        is_other = has_other and i == len(series) - 1
        fill = _OTHER_FILL if is_other else _SERIES_FILLS[i % len(_SERIES_FILLS)]
        hatch = _OTHER_HATCH if is_other else _SERIES_HATCHES[i % len(_SERIES_HATCHES)]
        bars = ax.bar(positions, values, bottom=bottom, width=0.86, color=fill, hatch=hatch or None,
                      edgecolor=_INK, linewidth=0.3, clip_on=False)  # no clip path per bar: cheaper to print
        handles.append((bars, _label(label)))
        bottom = [b + v for b, v in zip(bottom, values)]
    _time_axis(ax, buckets, step)
    ax.set_ylabel("rejected flows")
    _integer_axis(ax.yaxis)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(-0.6, len(buckets) - 0.4)
    # Legend top to bottom in the order the bands are stacked, top band first, as the eye reads them.
    ax.legend([h for h, _ in reversed(handles)], [t for _, t in reversed(handles)], loc="upper left",
              bbox_to_anchor=(1.005, 1.0), fontsize=6.2, handlelength=1.6, handleheight=1.1, borderaxespad=0)
    fig.subplots_adjust(left=0.075, right=0.8, top=0.96, bottom=0.2)
    unit = "hour" if step == timedelta(hours=1) else "day"
    alt = (f"Stacked bar chart of rejected flows per {unit}, {len(buckets)} {unit}s. "
           + "; ".join(f"{label}: {sum(values):,.0f} flows" for label, values in series) + ".")
    return Chart(_svg(fig), alt, width, height)


@_styled
def sparkline(values: Sequence[float], *, runs: int = SPARKLINE_RUNS) -> Chart | None:
    """A word-sized line of the last ``runs`` values, oldest first; the last point (this run) is marked."""
    points = [float(v) for v in values][-runs:]
    if not points:
        return None
    width, height = 22.0, 5.5
    fig = _bare_figure(width, height)
    ax = fig.add_axes((0.04, 0.12, 0.86, 0.76))
    ax.set_axis_off()
    xs = list(range(len(points)))
    low, high = min(points), max(points)
    pad = (high - low) * 0.08 or 1.0
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(-0.3, max(len(points) - 1, 1) + 0.3)
    if len(points) > 1:
        ax.plot(xs, points, color=_INK, linewidth=0.7, solid_joinstyle="round")
    ax.plot([xs[-1]], [points[-1]], marker="o", markersize=2.2, color=_INK, linestyle="none")
    alt = f"Trend over the last {len(points)} run{'s' if len(points) != 1 else ''}: " + ", ".join(
        fmt.plain(v) for v in points) + " (this run last)."
    return Chart(_svg(fig), alt, width, height)


@_styled
def exposed_ports_chart(rows: Iterable[Mapping[str, Any]], *, limit: int = MAX_PORT_BARS) -> Chart | None:
    """Public sources per exposed port (summed over interfaces), shaded by the port's worst severity.

    Reads ``exposed_well_known_ports`` rows: ``dstport``, ``protocol``, ``public_sources``,
    ``severity``. Ports with neither public sources nor a finding are left out; a world-open port
    with no public traffic gets a zero-length bar, labelled.
    """
    ports: dict[tuple[int, int], list[Any]] = {}
    for row in rows:
        port, proto = _as_number(row.get("dstport")), _as_number(row.get("protocol"))
        sources = _as_number(row.get("public_sources")) or 0.0
        severity = _severity(row.get("severity"))
        if port is None or proto is None or (sources <= 0 and severity is None):
            continue
        entry = ports.setdefault((int(port), int(proto)), [0.0, None])
        entry[0] += sources
        if severity is not None and (entry[1] is None or severity.rank > entry[1].rank):
            entry[1] = severity
    if not ports:
        return None
    order = sorted(ports, key=lambda k: (-(ports[k][1].rank if ports[k][1] else -1), -ports[k][0], k))
    shown = order[:limit]
    labels = [fmt.service(port, proto) for port, proto in shown]
    values = [ports[k][0] for k in shown]
    severities = [ports[k][1] for k in shown]

    width = 150.0
    height = 12.0 + 5.2 * len(shown)
    fig, ax = _figure(width, height)
    ys = list(range(len(shown)))[::-1]  # worst at the top
    fills = [_SEVERITY_FILLS[s] if s else "#ffffff" for s in severities]
    hatches = ["////" if s is None or s is Severity.INFO else "" for s in severities]
    for y, v, fill, hatch in zip(ys, values, fills, hatches):
        ax.barh([y], [v], height=0.66, color=fill, edgecolor=_INK, linewidth=0.4, hatch=hatch or None, clip_on=False)
    top = max(values) or 1.0
    for y, v, s in zip(ys, values, severities):
        text = f"{v:,.0f} public source{'s' if v != 1 else ''}" if v else "open to the world, no public traffic"
        ax.text(v + top * 0.015, y, f"{text} \u00b7 {s.value if s else 'no finding'}", va="center", fontsize=6,
                color=_INK)
    ax.set_yticks(ys, [_label(t) for t in labels])
    ax.set_xlim(0, top * 1.55)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.set_xlabel("distinct public sources, summed over interfaces")
    _integer_axis(ax.xaxis)
    ax.spines[["top", "right"]].set_visible(False)
    # Room on the left for the longest label ("Elasticsearch (tcp/9200)"): about 1.3 mm a character at 6 pt.
    left = min(0.4, (max((len(label) for label in labels), default=8) * 1.3 + 3) / width)
    fig.subplots_adjust(left=left, right=0.98, top=1 - 2.0 / height, bottom=9.5 / height)
    cut = f" ({len(order) - len(shown)} more ports are in the table)" if len(order) > len(shown) else ""
    alt = "Bar chart of public sources per exposed port: " + "; ".join(
        f"{t}: {v:,.0f} ({s.value if s else 'no finding'})" for t, v, s in zip(labels, values, severities)) + f".{cut}"
    return Chart(_svg(fig), alt, width, height)


# --- helpers ----------------------------------------------------------------------------------------

def _figure(width_mm: float, height_mm: float):
    fig = _bare_figure(width_mm, height_mm)
    return fig, fig.add_subplot()


def _bare_figure(width_mm: float, height_mm: float):
    # The object-oriented API (no pyplot): no global figure registry, no GUI backend, thread-safe enough.
    from matplotlib.figure import Figure

    return Figure(figsize=(width_mm * _MM, height_mm * _MM), dpi=72)


_METADATA = re.compile(rb"<metadata>.*?</metadata>\s*", re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>]*>\s*", re.S)


def _svg(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    # The RDF metadata and the DTD reference name remote URLs; neither is needed to draw the image.
    svg = _DOCTYPE.sub(b"", _METADATA.sub(b"", buf.getvalue()))
    return _checked_svg(svg)


_FORBIDDEN_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "image", "a", "animate", "set"}
_HREF = ("href", "{http://www.w3.org/1999/xlink}href")
_URL_REF = re.compile(r"url\(([^)]*)\)")


def _checked_svg(svg: bytes) -> bytes:
    """Refuse an SVG that could run or load anything: we made it, so this should never trigger."""
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise RenderError(f"a chart is not well-formed SVG: {exc}") from exc
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in _FORBIDDEN_TAGS:
            raise RenderError(f"a chart contains a <{tag}> element")
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if local.lower().startswith("on"):
                raise RenderError(f"a chart has an event handler attribute {local!r}")
            if name in _HREF and not value.startswith("#"):
                raise RenderError("a chart refers to something outside itself")
            if any(not ref.strip(" '\"").startswith("#") for ref in _URL_REF.findall(value)):
                raise RenderError("a chart refers to something outside itself")
    return svg


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _label(text: str) -> str:
    """A label as matplotlib should draw it: no control characters, no mathtext, not too long."""
    text = _CONTROL.sub("", str(text)).strip() or "(blank)"
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "\u2026"
    # "$" starts mathtext; a leading "_" hides a legend entry.
    text = text.replace("$", r"\$")  # outside mathtext a backslash is literal; only "$" needs escaping
    return "\u200b" + text if text.startswith("_") else text


def _time_axis(ax, buckets: Sequence[datetime], step: timedelta) -> None:
    hourly = step == timedelta(hours=1)
    if hourly:
        # A tick at each midnight and noon; hours in between are unlabeled.
        ticks = [i for i, b in enumerate(buckets) if b.hour in (0, 12)] or [0]
        labels = [b.strftime("%m-%d %H:%M") if b.hour == 0 else "12:00" for b in (buckets[i] for i in ticks)]
    else:
        every = max(1, len(buckets) // 14)  # at most about 14 labels
        ticks = list(range(0, len(buckets), every))
        labels = [buckets[i].strftime("%a %m-%d") for i in ticks]
    ax.set_xticks(ticks, labels, fontsize=6)
    ax.set_xlabel("hour starting (UTC)" if hourly else "day (UTC)")


def _integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=5, integer=True))


def _buckets(window: TimeWindow, step: timedelta) -> list[datetime]:
    out = []
    t = _floor(window.since, step)
    while t < window.until:
        out.append(t)
        t += step
    return out


def _floor(t: datetime, step: timedelta) -> datetime:
    """``t`` rounded down to its hour, or to its UTC day for daily buckets."""
    t = utc(t)
    if step >= timedelta(days=1):
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    return t.replace(minute=0, second=0, microsecond=0)


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return utc(parsed)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no number


def _severity(value: Any) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(str(value))
    except ValueError:
        return None
