"""The local Insights engine's semantics, query by query, over a few hand-made flow records and CloudTrail events
whose answers are known: commands, operators, functions, stats, field names, and the positioned refusals."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditor.engines.embedded import Workspace
from auditor.engines.insights.local import compile_query, run_insights
from auditor.engines.insights.parser import InsightsQueryError, InsightsUnsupportedError
from auditor.engines.sources import cloudtrail, files, flowlogs
from auditor.models import TimeWindow
from tests.support.flowdata import record, ts, write_flow_log
from tests.support.trail import event, ingress, write_trail

WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=timezone.utc), datetime(2026, 11, 16, tzinfo=timezone.utc))

FLOWS = [
    record(srcaddr="198.51.100.7", dstport=22, action="REJECT", bytes=40, packets=1, start="2026-11-10T01:00:00Z"),
    record(srcaddr="198.51.100.7", dstport=23, action="REJECT", bytes=60, packets=1, start="2026-11-10T01:30:00Z"),
    record(srcaddr="198.51.100.7", dstport=22, action="REJECT", bytes=80, packets=2, start="2026-11-10T02:10:00Z"),
    record(srcaddr="192.0.2.10", dstport=443, action="ACCEPT", bytes=1000, packets=9, start="2026-11-11T05:00:00Z"),
    record(srcaddr="2001:db8::5", dstaddr="2001:db8::1", dstport=443, action="ACCEPT", bytes=500, packets=4,
           start="2026-11-12T06:00:00Z"),
    record(srcaddr="10.0.1.20", dstport=5432, protocol=17, action="ACCEPT", bytes=300, packets=3,
           start="2026-11-12T07:00:00Z"),
    record(srcaddr=None, dstaddr=None, srcport=None, dstport=None, protocol=None, packets=None, bytes=None,
           action=None, log_status="NODATA", start="2026-11-13T00:00:00Z"),
    record(srcaddr="198.51.100.7", dstport=22, action="REJECT", start="2026-11-08T23:59:59Z"),  # before the window
]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("insights-semantics")
    write_flow_log(root / "flows", FLOWS)
    write_trail(root / "trail", [
        event("AuthorizeSecurityGroupIngress", ingress("sg-1", "tcp", 22, 22, "0.0.0.0/0"),
              {"_return": True, "securityGroupRuleSet": {"items": [{"groupId": "sg-1"}]}}, time="2026-11-10T10:00:00Z"),
        event("CreateSecurityGroup", {"groupName": "web"}, {"groupId": "sg-2"}, time="2026-11-10T11:00:00Z",
              error="Client.UnauthorizedOperation", arn=None,
              resources=[{"ARN": "arn:aws:ec2:us-east-1:111122223333:security-group/sg-2", "accountId": "1",
                          "type": "AWS::EC2::SecurityGroup"}]),
    ])
    ws = Workspace()
    flowlogs.load_flow_logs(ws.con, files.discover(root / "flows", ("text",)), window=WINDOW)
    cloudtrail.load_cloudtrail(ws.con, files.discover(root / "trail", ("json",)), window=WINDOW)
    yield ws.con
    ws.close()


def rows(con, text, table="flow_logs", params=None):
    r = run_insights(con, text, table, WINDOW, params)
    return [dict(zip(r.columns, row)) for row in r.rows]


def values(con, text, table="flow_logs"):
    r = run_insights(con, text, table, WINDOW)
    assert len(r.columns) == 1
    return [row[0] for row in r.rows]


# ------------------------------------------------------------------------------------------------ commands

def test_a_bare_filter_shows_timestamp_and_message_newest_first(con):
    out = rows(con, 'filter action = "REJECT"')
    assert list(out[0]) == ["@timestamp", "@message"]
    assert [r["@timestamp"] for r in out] == [datetime(2026, 11, 10, h, m, tzinfo=timezone.utc)
                                             for h, m in ((2, 10), (1, 30), (1, 0))]
    first = FLOWS[2]
    assert out[0]["@message"] == " ".join(str(first[f]) for f in ("version", "account-id", "interface-id", "srcaddr",
                                                                  "dstaddr", "srcport", "dstport", "protocol",
                                                                  "packets", "bytes", "start", "end", "action",
                                                                  "log-status"))
    assert values(con, 'filter logStatus = "NODATA" | fields @message') == [
        f"2 111122223333 eni-web - - - - - - - {ts('2026-11-13T00:00:00Z')} {ts('2026-11-13T00:01:00Z')} - NODATA"]


def test_fields_accumulate_and_display_picks_the_last(con):
    out = rows(con, 'fields srcAddr | fields dstPort as port, bytes * 2 as double | filter port = 443')
    assert list(out[0]) == ["srcAddr", "port", "double"] and len(out) == 2
    assert sorted(r["double"] for r in out) == [1000, 2000]
    assert list(rows(con, "fields srcAddr, dstPort | display dstPort")[0]) == ["dstPort"]
    assert values(con, "fields @logStream | limit 1") == ["eni-web-all"]


def test_sort_limit_and_dedup(con):
    assert values(con, "filter ispresent(bytes) | sort bytes desc | limit 2 | display bytes") == [1000, 500]
    assert values(con, "fields bytes | sort bytes | limit 2 | sort bytes desc") == [60, 40]  # sort of the limited rows
    assert values(con, "fields bytes | limit 2") == [None, 300]  # no sort: the newest rows
    # dedup keeps the first row of each value in the sort order; a row with no value is never a duplicate
    assert rows(con, "fields srcAddr, bytes | sort bytes asc | dedup srcAddr") == [
        {"srcAddr": "198.51.100.7", "bytes": 40}, {"srcAddr": "10.0.1.20", "bytes": 300},
        {"srcAddr": "2001:db8::5", "bytes": 500}, {"srcAddr": "192.0.2.10", "bytes": 1000},
        {"srcAddr": None, "bytes": None}]
    with pytest.raises(InsightsQueryError, match="only limit may follow dedup"):
        rows(con, "dedup srcAddr | sort bytes")


def test_parse_glob_and_regex(con):
    out = rows(con, 'filter action = "REJECT" | parse @message "eni-web * * * 22 *" as src, dst, sport, rest '
                    '| display src, dst, sport, rest')
    assert [r["src"] for r in out] == ["198.51.100.7", None, "198.51.100.7"]  # the 23 record does not match
    assert out[0]["rest"].endswith("REJECT OK")
    assert values(con, r'parse @message /(?<verb>ACCEPT|REJECT) (?<st>[A-Z]+)$/ | filter st = "OK" '
                       r'| stats count(*) by verb | sort verb | display verb') == ["ACCEPT", "REJECT"]


def test_union_all_fills_missing_columns_with_null(con):
    out = rows(con, 'stats count(*) as n by srcAddr as k | filter k = "192.0.2.10"\nunion all\nstats count(*) as n')
    assert sorted(map(repr, out)) == sorted(map(repr, [{"k": "192.0.2.10", "n": 1}, {"k": None, "n": 7}]))


# ----------------------------------------------------------------------------------------------- operators

@pytest.mark.parametrize("condition,expected", [
    ('srcAddr like "51.100"', 4 - 1),  # the record before the window is not read
    ('srcAddr like /^198\\.51/', 3),
    ('srcAddr like "51.100" and not dstPort = 22', 1),
    ('srcAddr not like "51.100"', 3),  # a missing srcAddr matches nothing, "not" included
    ("srcAddr =~ /(?i)DB8/", 1),
    ('action like "reject"', 0),  # case-sensitive
    ('dstPort in [22, "443"]', 4),
    ("dstPort not in [22, 23]", 3),
    ('dstPort = "22"', 2),
    ('dstPort > "100"', 3),
    ('srcAddr > "192"', 5),
    ("bytes / 0 > 1 or bytes % 0 = 0", 0),  # division by zero: no value
    ("-bytes < -499 and bytes ^ 2 >= 250000", 2),
    ("(packets + 1) * 10 = 20 or packets - 1 = 8", 3),
    ("ispresent(bytes) and not ispresent(srcAddr)", 0),
    ("isblank(srcAddr)", 1),
    ('isIpv4InSubnet(srcAddr, "198.51.100.0/24")', 3),
    ('isIpInSubnet(srcAddr, "2001:db8::/32")', 1),
    ('isIpv4InSubnet(srcAddr, "2001:db8::/32")', 0),
    ('strlen(srcAddr) = 11 and toupper(action) = "REJECT" and tolower("ABC") = "abc"', 0),
    ('concat(action, "-", dstPort) = "REJECT-22"', 2),
    ("abs(-bytes) = 40 and floor(bytes / 3) = 13 and ceil(bytes / 3) = 14", 1),
    ('toMillis(@timestamp) = 1794272400000 and fromMillis(toMillis(@timestamp)) = @timestamp', 1),
    ('datefloor(@timestamp, 1h) = fromMillis(1794272400000)', 2),
])
def test_filter_conditions(con, condition, expected):
    assert len(rows(con, f"filter {condition}")) == expected


def test_strlen_counts_code_points_and_booleans_show_as_0_and_1(con):
    assert rows(con, 'filter logStatus = "NODATA" | fields strlen("héllo👍") as n, ispresent(srcAddr) as p') == \
        [{"n": 6, "p": 0}]


# ---------------------------------------------------------------------------------------------------- stats

def test_stats_aggregations(con):
    out = rows(con, "stats count(*) as n, count(srcAddr) as c, count_distinct(dstPort) as ports, sum(bytes) as b, "
                    "avg(packets) as p, min(bytes) as lo, max(srcAddr) as hi, pct(bytes, 50) as med, "
                    "pct(bytes, 100) as top, earliest(dstPort) as first, latest(dstPort) as last, "
                    "sum(bytes) / count(bytes) as mean")
    assert out == [{"n": 7, "c": 6, "ports": 4, "b": 1980, "p": 20 / 6, "lo": 40, "hi": "2001:db8::5", "med": 80,
                    "top": 1000, "first": 22, "last": 5432, "mean": 330.0}]  # latest: of the events that have the field


def test_stats_by_groups_bins_and_what_follows(con):
    out = rows(con, 'filter action = "REJECT" | stats count(*) as n, sum(bytes) as b by bin(1h) as hour | sort hour')
    assert out == [{"hour": datetime(2026, 11, 10, 1, tzinfo=timezone.utc), "n": 2, "b": 100},
                   {"hour": datetime(2026, 11, 10, 2, tzinfo=timezone.utc), "n": 1, "b": 80}]
    out = rows(con, "stats count(*) by action, bin(1d) | filter `count(*)` > 1 | sort action desc")
    assert out == [{"action": "REJECT", "bin(1d)": datetime(2026, 11, 10, tzinfo=timezone.utc), "count(*)": 3},
                   {"action": "ACCEPT", "bin(1d)": datetime(2026, 11, 12, tzinfo=timezone.utc), "count(*)": 2}]
    # missing values group under a null key
    assert {r["srcAddr"]: r["count(*)"] for r in rows(con, "stats count(*) by srcAddr")}[None] == 1


def test_queries_pasted_from_aws_articles_run_as_written(con):
    """Issue 23: a space between a bin()'s number and unit, long units and plurals; a column named as the query
    wrote it; a bare aggregation refused with the stats query to write instead."""
    want = rows(con, "stats sum(packets) as p by bin(30m) as t | sort t")
    for spelled in ("30min", "30 min", " 30 min ", "30 minutes", "30mins", "1800s", "1800 seconds"):
        assert rows(con, f"stats sum(packets) as p by bin({spelled}) as t | sort t") == want, spelled
    assert run_insights(con, "stats sum(packets) by bin( 30 min)", "flow_logs", WINDOW).columns == (
        "bin(30 min)", "sum(packets)")
    assert run_insights(con, "stats count(*) by bin(30min)", "flow_logs", WINDOW).columns == ("bin(30min)", "count(*)")
    assert run_insights(con, "stats count(*) by bin(1h)", "flow_logs", WINDOW).columns == ("bin(1h)", "count(*)")
    with pytest.raises(InsightsQueryError, match=r"unknown command 'count': an aggregation needs stats \(did you "
                                                 r"mean 'stats count\(\*\) by dstPort'\?\)") as info:
        run_insights(con, "filter action = \"REJECT\" | count (*) by dstPort | display dstPort", "flow_logs", WINDOW)
    assert "column 28" in str(info.value)
    # A space before a word that is no unit, or where the call does not close, is still an error.
    for text in ("stats count(*) by bin(30 apples)", "fields 5 min"):
        with pytest.raises(InsightsQueryError):
            run_insights(con, text, "flow_logs", WINDOW)


# ----------------------------------------------------------------------------------------------- CloudTrail

def test_cloudtrail_fields_are_the_events_json_paths(con):
    out = rows(con, "fields eventName, requestParameters.groupId, requestParameters.ipPermissions.items.0.fromPort as "
                    "port, requestParameters.ipPermissions.items.0.ipRanges.items.0.cidrIp as cidr, "
                    "requestParameters.ipPermissions as whole, userIdentity.arn, userIdentity.sessionContext."
                    "sessionIssuer.arn as issuer, resources.0.ARN as res, errorCode | sort eventName", "cloudtrail")
    assert out == [
        {"eventName": "AuthorizeSecurityGroupIngress", "requestParameters.groupId": "sg-1", "port": "22",
         "cidr": "0.0.0.0/0", "whole": None, "userIdentity.arn": "arn:aws:iam::111122223333:user/alice",
         "issuer": None, "res": None, "errorCode": None},
        {"eventName": "CreateSecurityGroup", "requestParameters.groupId": None, "port": None, "cidr": None,
         "whole": None, "userIdentity.arn": None, "issuer": None,
         "res": "arn:aws:ec2:us-east-1:111122223333:security-group/sg-2",
         "errorCode": "Client.UnauthorizedOperation"}]
    assert values(con, 'filter requestParameters.ipPermissions.items.0.fromPort = 22 | fields @logStream',
                  "cloudtrail") == ["111122223333_CloudTrail_us-east-1"]
    assert values(con, "fields requestParameters | filter ispresent(errorCode)", "cloudtrail") == ['{"groupName":"web"}']


# -------------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("text,table,message,column", [
    ("filter srcaddr = 1", "flow_logs", "unknown field 'srcaddr' (did you mean 'srcAddr'?)", 8),
    ("filter eventname = 1", "cloudtrail", "did you mean 'eventName'?", 8),
    ("fields userIdentity", "cloudtrail", "userIdentity is an object: name one of its fields", 8),
    ("fields userIdentity.nope", "cloudtrail", "is not a field of userIdentity", 8),
    ("fields @log", "flow_logs", "@log is not available", 8),
    ("stats count(*) by bin(1w)", "flow_logs", "periods in w are not supported", 23),
    ("fields substr(srcAddr, 1)", "flow_logs", "substr() is not supported", 8),
    ("fields frobnicate(srcAddr)", "flow_logs", "unknown function frobnicate()", 8),
    ("filter sum(bytes) > 1", "flow_logs", "sum() is an aggregation: it belongs in stats", 8),
    ("fields bin(1h)", "flow_logs", "bin() belongs after 'by' in stats", 8),
    ("stats count(*) as n | filter bytes > 1", "flow_logs", "after stats only its output fields exist (n)", 30),
    ("stats count(*) | stats count(*)", "flow_logs", "a second stats command is not supported", 18),
    ("filter @timestamp > 5", "flow_logs", "cannot compare a timestamp with a number; use fromMillis", 19),
    ("filter srcAddr like /a(?=b)/", "flow_logs", "lookaround, backreferences", 23),
    ("filter srcAddr like /a(b/", "flow_logs", "not a valid regular expression: missing )", 21),
    ("filter bytes", "flow_logs", "filter needs a condition", 8),
    ("stats bytes by srcAddr", "flow_logs", "stats needs an aggregation", 7),
    ("stats count(*) by sum(bytes)", "flow_logs", "sum() cannot group rows", 19),
    ("stats pct(bytes, 101)", "flow_logs", "pct() takes a percentile from 0 to 100", 18),
    ("stats count(*), count(*)", "flow_logs", "two fields named 'count(*)'", 17),
    ("fields srcAddr | sort bytes | dedup action | fields x", "flow_logs", "only limit may follow dedup", 46),
    ("stats count(*) as n | dedup n", "flow_logs", "dedup after stats needs a sort", 23),
    ("filter dstPort in :ports", "flow_logs", "no value for parameter :ports", 19),
    ("stats count(*) as n by srcAddr\nunion all\nstats count(*) as m", "flow_logs", "returns m", 1),
])
def test_refusals_point_at_the_position(con, text, table, message, column):
    with pytest.raises(InsightsQueryError) as info:
        run_insights(con, text, table, WINDOW)
    assert message in str(info.value)
    assert info.value.column == column


def test_unsupported_is_its_own_error_class(con):
    with pytest.raises(InsightsUnsupportedError):
        run_insights(con, "stats count(*) by bin(1mo)", "flow_logs", WINDOW)


def test_values_are_bound_never_pasted_into_sql():
    compiled = compile_query('filter action = "x\' OR 1=1 --" and srcAddr like /a\'b/ | limit :n', "flow_logs",
                             WINDOW, {"n": 3})
    assert "OR 1=1" not in compiled.sql and "a'b" not in compiled.sql and "1794" not in compiled.sql
    assert "x' OR 1=1 --" in compiled.params.values() and compiled.params["__since_s"] == WINDOW.since_s
