"""Every Logs Insights sample query of the corpus (AWS docs and the CloudWatch console samples) runs on the local
Insights engine over the corpus logs, the demo data and a few hand-made CloudTrail events. Each answer is checked
against a computation in plain Python over the parsed records (the rows of the flow_logs / cloudtrail tables),
written per query from its description, never through the engine."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from auditor.demo import generate
from auditor.engines.embedded import Workspace
from auditor.engines.insights.local import run_insights
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.models import TimeWindow
from tests.support.trail import event, write_trail

WIDE = TimeWindow(datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))
FLOW_DIRS = ("aws-docs/vpc-flow-log-record-examples", "flowlogs-reader", "elastic-integrations/vpcflow",
             "elastic-beats", "panther-analysis")
TRAIL_DIRS = ("aws-docs/cloudtrail-log-file-examples", "elastic-integrations/cloudtrail", "panther-analysis",
              "stratus-red-team", "cloud-custodian/cwe")


def corpus_queries(corpus: Path) -> list[tuple[str, str]]:
    """(file, query) for every query of the corpus .cwli files: blocks separated by blank lines."""
    out = []
    for path in sorted(list(corpus.glob("aws-docs/cloudwatch-logs-insights/*.cwli")) + list(corpus.glob("grafana/*.cwli"))):
        for block in re.split(r"\n\s*\n", path.read_text()):
            if any(line.strip() and not line.strip().startswith("#") for line in block.splitlines()):
                out.append((path.name, block.strip()))
    return out


def _key(query: str) -> str:
    body = " ".join(line for line in query.splitlines() if not line.strip().startswith("#"))
    return re.sub(r"\s+", "", body).replace("'", '"')


def _load(ws: Workspace, flow_paths: list[Path], trail_paths: list[Path], window: TimeWindow) -> None:
    flowlogs.create_table(ws.con)
    cloudtrail.create_table(ws.con)
    flow = [f for p in flow_paths for f in files.discover(p, ("text", "parquet"))]
    trail = [f for p in trail_paths for f in files.discover(p, ("json", "text"), skip_dirs=("CloudTrail-Digest",))]
    flowlogs.load_flow_logs(ws.con, flow, window=window)
    cloudtrail.load_cloudtrail(ws.con, trail, window=window)


def _handmade_trail(root: Path) -> Path:
    """Events the corpus lacks, so that the CloudTrail samples have something to find."""
    events = [
        event("CreateUser", {"userName": "mallory"}, {"user": {"arn": "arn:aws:iam::111122223333:user/mallory",
                                                                "userName": "mallory"}},
              source="iam.amazonaws.com", time="2026-11-10T08:00:00Z", awsRegion="us-east-1"),
        event("CreateUser", {"userName": "trent"}, {"user": {"arn": "arn:aws:iam::111122223333:user/trent"}},
              source="iam.amazonaws.com", time="2026-11-10T09:00:00Z"),
        event("UpdateTrail", {"name": "org"}, None, source="cloudtrail.amazonaws.com", time="2026-11-10T10:00:00Z",
              error="AccessDenied"),
        event("UpdateTrail", {"name": "org2"}, None, source="cloudtrail.amazonaws.com", time="2026-11-10T10:05:00Z",
              error="AccessDenied"),
        event("UpdateTrail", {"name": "org3"}, None, source="cloudtrail.amazonaws.com", time="2026-11-10T10:06:00Z"),
        event("StartInstances", {"instancesSet": {"items": [{"instanceId": "i-1"}]}}, None,
              time="2026-11-10T11:00:00Z", awsRegion="us-east-2"),
        event("StopInstances", {"instancesSet": {"items": [{"instanceId": "i-1"}]}}, None,
              time="2026-11-10T11:30:00Z", awsRegion="us-east-2"),
        event("StopInstances", {"instancesSet": {"items": [{"instanceId": "i-2"}]}}, None,
              time="2026-11-10T11:40:00Z"),
    ]
    write_trail(root / "handmade", events)
    return root / "handmade"


@pytest.fixture(scope="module")
def datasets(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Workspace, TimeWindow]]:
    root = tmp_path_factory.mktemp("insights-corpus")
    generate(root / "demo", date(2026, 11, 16), days=7)
    sets = {}
    ws = Workspace()
    _load(ws, [corpus / d for d in FLOW_DIRS], [corpus / d for d in TRAIL_DIRS] + [_handmade_trail(root)], WIDE)
    sets["corpus"] = (ws, WIDE)
    demo_window = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))
    ws = Workspace()
    _load(ws, [root / "demo" / "flowlogs"], [root / "demo" / "cloudtrail"], demo_window)
    sets["demo"] = (ws, demo_window)
    yield sets
    for ws, _ in sets.values():
        ws.close()


def _records(ws: Workspace, table: str) -> list[dict[str, Any]]:
    cur = ws.con.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


# ---------------------------------------------------------------------------------------------- expectations
# Each returns (expected rows as dicts keyed by output field, how to compare): "set" (order free), or
# ("top", field, n, desc) for sort+limit, or ("sorted", field, desc) for a full sort.

def _group(records: list[dict], keys: tuple[str, ...], where: Callable[[dict], bool] = lambda r: True) -> dict:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if where(r):
            groups[tuple(r[k] for k in keys)].append(r)
    return groups


def _sum(values: list) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _avg(values: list) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _minmax(fn: Callable, values: list) -> Any:
    present = [v for v in values if v is not None]
    return fn(present) if present else None


def _contains(value: Any, needle: str) -> bool | None:
    return None if value is None else needle in value


def _flow_sum(field: str, alias: str, n: int, where: Callable = lambda r: True, keys=("srcaddr", "dstaddr"),
              names=("srcAddr", "dstAddr")):
    def expect(flows, trail):
        groups = _group(flows, keys, where)
        rows = [{**dict(zip(names, k)), alias: _sum([r[field] for r in rs])} for k, rs in groups.items()]
        return rows, ("top", alias, n, True)
    return expect


def _nat(dst_like: str, src_like: str, negate_src: bool = False, swap: bool = False, extra: tuple | None = None):
    def where(r):
        a = _contains(r["dstaddr"] if not swap else r["srcaddr"], dst_like)
        b = _contains(r["srcaddr"] if not swap else r["dstaddr"], src_like)
        if negate_src:
            b = None if b is None else not b
        first = bool(a) and bool(b)
        if extra is None:
            return first
        c = _contains(r["srcaddr"], extra[0])
        d = _contains(r["dstaddr"], extra[1])
        return first or (bool(c) and bool(d))
    return _flow_sum("bytes", "bytesTransferred", 10, where)


def _count_by(keys: tuple[str, ...], names: tuple[str, ...], alias: str = "count(*)", where=lambda r: True,
              table: str = "flow", order: tuple | None = None):
    def expect(flows, trail):
        recs = flows if table == "flow" else trail
        rows = [{**dict(zip(names, k)), alias: len(rs)} for k, rs in _group(recs, keys, where).items()]
        return rows, order or "set"
    return expect


def _avg_by_dst(with_max: bool):
    def expect(flows, trail):
        rows = []
        for (dst,), rs in _group(flows, ("dstaddr",)).items():
            row = {"dstAddr": dst, "avg(bytes)": _avg([r["bytes"] for r in rs])}
            if with_max:
                row["max(bytes)"] = _minmax(max, [r["bytes"] for r in rs])
            rows.append(row)
        return rows, "set"
    return expect


def _avg_min_max(flows, trail):
    rows = []
    for (src, dst), rs in _group(flows, ("srcaddr", "dstaddr")).items():
        b = [r["bytes"] for r in rs]
        rows.append({"srcAddr": src, "dstAddr": dst, "avg(bytes)": _avg(b), "min(bytes)": _minmax(min, b),
                     "max(bytes)": _minmax(max, b)})
    return rows, "set"


def _in_subnet(flows, trail):
    def where(r):
        src = r["srcaddr"]
        if src is None or ":" in src:
            return False
        try:
            return ipaddress.ip_address(src) in ipaddress.ip_network("192.0.2.0/24")
        except ValueError:
            return False
    return _flow_sum("bytes", "bytesTransferred", 15, where, keys=("dstaddr",), names=("dstAddr",))(flows, trail)


def _skipdata_hourly(flows, trail):
    counts: dict[datetime, int] = defaultdict(int)
    for r in flows:
        if r["log_status"] == "SKIPDATA" and r["start"] is not None:
            counts[datetime.fromtimestamp(r["start"] // 3600 * 3600, timezone.utc)] += 1
    return [{"t": t, "count(*)": n} for t, n in counts.items()], ("sorted", "t", False)


def _create_user(flows, trail):
    rows = []
    for r in sorted((r for r in trail if r["eventname"] == "CreateUser"), key=lambda r: r["eventtime"], reverse=True):
        req = json.loads(r["requestparameters"]) if r["requestparameters"] else {}
        resp = json.loads(r["responseelements"]) if r["responseelements"] else {}
        user = resp.get("user") if isinstance(resp, dict) else None
        rows.append({"awsRegion": r["awsregion"], "requestParameters.userName": req.get("userName"),
                     "responseElements.user.arn": user.get("arn") if isinstance(user, dict) else None})
    return rows, "ordered"


def _start_stop(flows, trail):
    hits = [r for r in trail if r["eventname"] in ("StartInstances", "StopInstances") and r["awsregion"] == "us-east-2"]
    hits.sort(key=lambda r: r["eventtime"], reverse=True)
    return [{"eventID": r["eventid"], "eventTime": r["eventtime"], "eventName": r["eventname"]} for r in hits], "messages"


def _update_trail_errors(flows, trail):
    rows = [{"errorCode": k[0], "errorMessage": k[1], "count(*)": len(rs)}
            for k, rs in _group(trail, ("errorcode", "errormessage"),
                                lambda r: r["eventname"] == "UpdateTrail" and r["errorcode"] is not None).items()]
    return rows, "set"


EXPECTED: dict[str, Callable] = {
    _key("stats avg(bytes), min(bytes), max(bytes) by srcAddr, dstAddr"): _avg_min_max,
    _key("filter protocol=17 | stats count(*) by srcAddr"):
        _count_by(("srcaddr",), ("srcAddr",), where=lambda r: r["protocol"] == 17),
    _key("stats sum(bytes) as bytesTransferred by srcAddr, dstAddr | sort bytesTransferred desc | limit 10"):
        _flow_sum("bytes", "bytesTransferred", 10),
    _key('filter action="REJECT" | stats count(*) as numRejections by srcAddr | sort numRejections desc | limit 20'):
        _count_by(("srcaddr",), ("srcAddr",), "numRejections", lambda r: r["action"] == "REJECT",
                  order=("top", "numRejections", 20, True)),
    _key("stats count(*) by eventSource, eventName, awsRegion"):
        _count_by(("eventsource", "eventname", "awsregion"), ("eventSource", "eventName", "awsRegion"), table="trail"),
    _key('filter eventSource="ec2.amazonaws.com" | stats count(*) as eventCount by eventName, awsRegion | '
         'sort eventCount desc'):
        _count_by(("eventname", "awsregion"), ("eventName", "awsRegion"), "eventCount",
                  lambda r: r["eventsource"] == "ec2.amazonaws.com", table="trail", order=("sorted", "eventCount", True)),
    _key('filter eventName="CreateUser" | fields awsRegion, requestParameters.userName, responseElements.user.arn'):
        _create_user,
    _key('filter (eventName="StartInstances" or eventName="StopInstances") and awsRegion="us-east-2"'): _start_stop,
    _key('filter eventName="UpdateTrail" and ispresent(errorCode) | stats count(*) by errorCode, errorMessage'):
        _update_trail_errors,
    _key("filter (dstAddr like 'x.x.x.x' and srcAddr like 'y.y.') | stats sum(bytes) as bytesTransferred by "
         "srcAddr, dstAddr | sort bytesTransferred desc | limit 10"): _nat("x.x.x.x", "y.y."),
    _key("filter (dstAddr like 'x.x.x.x' and srcAddr like 'y.y.') or (srcAddr like 'xxx.xx.xx.xx' and dstAddr like "
         "'y.y.') | stats sum(bytes) as bytesTransferred by srcAddr, dstAddr | sort bytesTransferred desc | limit 10"):
        _nat("x.x.x.x", "y.y.", extra=("xxx.xx.xx.xx", "y.y.")),
    _key("filter (srcAddr like 'x.x.x.x' and dstAddr not like 'y.y.') | stats sum(bytes) as bytesTransferred by "
         "srcAddr, dstAddr | sort bytesTransferred desc | limit 10"): _nat("x.x.x.x", "y.y.", True, swap=True),
    _key("filter (dstAddr like 'x.x.x.x' and srcAddr not like 'y.y.') | stats sum(bytes) as bytesTransferred by "
         "srcAddr, dstAddr | sort bytesTransferred desc | limit 10"): _nat("x.x.x.x", "y.y.", True),
    _key("stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 15"):
        _flow_sum("packets", "packetsTransferred", 15),
    _key('filter isIpv4InSubnet(srcAddr, "192.0.2.0/24") | stats sum(bytes) as bytesTransferred by dstAddr | '
         'sort bytesTransferred desc | limit 15'): _in_subnet,
    _key('filter logStatus="SKIPDATA" | stats count(*) by bin(1h) as t | sort t'): _skipdata_hourly,
    _key("stats avg(bytes) by dstAddr"): _avg_by_dst(False),
    _key("stats avg(bytes), max(bytes) by dstAddr"): _avg_by_dst(True),
}

# The NAT samples' placeholders, filled in the way their doc note says (the NAT gateway's private IP and the
# VPC's first two octets), with addresses the demo data has, so that they are also checked on real matches.
FILLED = {"x.x.x.x": "10.0.0.10", "xxx.xx.xx.xx": "10.0.0.10", "y.y.": "10.0."}


def _norm(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat()
    return round(v, 6) if isinstance(v, float) else v


def _canon(rows: list[dict]) -> list[str]:
    return sorted(repr({k: _norm(v) for k, v in r.items()}) for r in rows)


def _check(result, expected: list[dict], how: Any) -> None:
    got = [dict(zip(result.columns, row)) for row in result.rows]
    if expected and how != "messages":
        assert list(result.columns) == list(expected[0]), "output fields and their order"
    if how == "set":
        assert _canon(got) == _canon(expected)
    elif how == "ordered":
        assert got == expected
    elif how == "messages":
        assert list(result.columns) == ["@timestamp", "@message"]
        events = [json.loads(r["@message"]) for r in got]
        assert [(e["eventID"], e["eventTime"], e["eventName"]) for e in events] == \
            [(e["eventID"], e["eventTime"], e["eventName"]) for e in expected]
        assert [r["@timestamp"] for r in got] == [datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
                                                  for e in expected]
    elif how[0] == "sorted":
        _, field, desc = how
        values = [r[field] for r in got]
        assert values == sorted(values, reverse=desc)
        assert _canon(got) == _canon(expected)
    else:
        _, field, n, desc = how
        want = sorted(expected, key=lambda r: (r[field] is None, -r[field] if desc and r[field] is not None
                                               else r[field] or 0))[:n]
        assert [r[field] for r in got] == [r[field] for r in want]  # ties may pick any rows, values may not
        by_key = {tuple(v for k, v in r.items() if k != field): r[field] for r in expected}
        for r in got:
            assert by_key[tuple(v for k, v in r.items() if k != field)] == r[field]


def test_every_corpus_query_has_an_expectation(corpus):
    queries = corpus_queries(corpus)
    assert len(queries) == 21
    missing = [q for _, q in queries if _key(q) not in EXPECTED]
    assert missing == []


@pytest.mark.parametrize("dataset", ["corpus", "demo"])
def test_corpus_queries_agree_with_plain_python(corpus, datasets, dataset):
    ws, window = datasets[dataset]
    flows, trail = _records(ws, "flow_logs"), _records(ws, "cloudtrail")
    # The window applies to a record's start; a record without one (a format without ${start}) is in no window.
    flows = [r for r in flows if r["start"] is not None and window.since_s <= r["start"] < window.until_s]
    assert flows and trail
    checked = nonempty = 0
    for _name, query in corpus_queries(corpus):
        table = "cloudtrail" if "event" in query or "CreateUser" in query else "flow_logs"
        variants = [query]
        if "x.x.x.x" in query and dataset == "demo":
            filled = query
            for placeholder, value in FILLED.items():
                filled = filled.replace(f"'{placeholder}'", f"'{value}'")
            variants.append(filled)
        for text in variants:
            expect = EXPECTED[_key(query)]
            if text != query:  # the filled NAT variant: same computation with the filled values
                expect = _nat_filled(query)
            expected, how = expect(flows, trail)
            result = run_insights(ws.con, text, table, window)
            _check(result, expected, how)
            checked += 1
            nonempty += bool(result.rows)
    assert checked >= 21
    assert nonempty >= (12 if dataset == "demo" else 10), "most samples find something"


def _nat_filled(query: str) -> Callable:
    x, y = FILLED["x.x.x.x"], FILLED["y.y."]
    if "xxx.xx.xx.xx" in query:
        return _nat(x, y, extra=(FILLED["xxx.xx.xx.xx"], y))
    if "srcAddr like 'x.x.x.x'" in query:
        return _nat(x, y, True, swap=True)
    if "srcAddr not like" in query:
        return _nat(x, y, True)
    return _nat(x, y)
