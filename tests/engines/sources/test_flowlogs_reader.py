"""The flow-log reader: every corpus sample, the formats AWS writes side by side, read-once, and pruning.

Expected values are read off the sample files by eye (see /work/shared/corpus/SOURCES.md), never taken from
a run of the reader.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditor.engines.sources.files import describe, discover, may_hold, prune
from auditor.engines.sources.flowlogs import create_table, load_flow_logs
from auditor.logformat import DEFAULT_FORMAT, FIELDS, TABLE_COLUMNS, parse_log_format
from auditor.models import FileQuality, InputFile, TimeWindow
from tests.support.opens import count_opens

UTC = timezone.utc
WIDE = TimeWindow(datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
V2 = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
      "log-status")
# The 29 v2-v5 fields in the order of AWS's field table, as in test-v5-all-fields.log (SOURCES.md).
V5_ALL = (V2 + " vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
          "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path")
ECS = (V5_ALL + " ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id "
       "ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id")
# The Transit Gateway default format, as listed for test-tgw-samples.log in SOURCES.md.
TGW = ("version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id "
       "tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id "
       "tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
       "log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded "
       "packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service")
# The header of aws-docs' v3-custom-transit-gateway.log, the format of elastic-beats' header-less sample.
TRANSIT17 = ("version interface-id account-id vpc-id subnet-id instance-id srcaddr dstaddr srcport dstport protocol "
             "tcp-flags type pkt-srcaddr pkt-dstaddr action log-status")


def rows(con: duckdb.DuckDBPyConnection, where: str = "true", **params: Any) -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM flow_logs WHERE {where}", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def one(con: duckdb.DuckDBPyConnection, column: str | None = None, value: Any = None, **key: Any) -> dict[str, Any]:
    """The one row whose columns hold the given values."""
    if column is not None:
        key[column] = value
    found = rows(con, " AND ".join(f'"{c}" = ${c}' for c in key), **key)
    assert len(found) == 1, found
    return found[0]


def quality(path: Path | str, records=0, nodata=0, headers=0, blank=0, malformed=0) -> FileQuality:
    return FileQuality(str(path), records=records, nodata=nodata, headers=headers, blank=blank, malformed=malformed)


def load(paths, *, window: TimeWindow = WIDE, **kw) -> tuple[duckdb.DuckDBPyConnection, tuple[FileQuality, ...]]:
    con = duckdb.connect()
    return con, load_flow_logs(con, [describe(p) for p in paths], window=window, **kw)


# ------------------------------------------------------------------------------------------------- the corpus

@dataclass(frozen=True)
class Sample:
    path: str
    records: int = 0
    nodata: int = 0
    headers: int = 0
    blank: int = 0
    malformed: int = 0
    fmt: str | None = None  # the format of a header-less sample that is not v2's default
    key: dict[str, Any] = field(default_factory=dict)  # picks the record whose fields are checked
    expect: dict[str, Any] = field(default_factory=dict)


SAMPLES = [
    Sample("aws-docs/vpc-flow-log-record-examples/v2-default-accept-reject.log", records=2,
           key=dict(srcport=20641),
           expect=dict(version=2, account_id="123456789010", interface_id="eni-1235b8ca123456789",
                       srcaddr="172.31.16.139", dstaddr="172.31.16.21", dstport=22, protocol=6, packets=20,
                       bytes=4249, start=1418530010, end=1418530070, action="ACCEPT", log_status="OK",
                       vpc_id=None, region=None)),
    Sample("aws-docs/vpc-flow-log-record-examples/v2-default-icmp-sg-vs-nacl.log", records=2,
           key=dict(start=1432917094),
           expect=dict(srcaddr="172.31.16.139", dstaddr="203.0.113.12", srcport=0, dstport=0, protocol=1,
                       packets=4, bytes=336, end=1432917142, action="REJECT")),
    Sample("aws-docs/vpc-flow-log-record-examples/v2-default-ipv6.log", records=1, key=dict(srcport=34892),
           expect=dict(srcaddr="2001:db8:1234:a100:8d6e:3477:df66:f105",
                       dstaddr="2001:db8:1234:a102:3304:8879:34cf:4071", dstport=22, packets=54, bytes=8855,
                       start=1477913708, action="ACCEPT")),
    Sample("aws-docs/vpc-flow-log-record-examples/v2-default-nodata-skipdata.log", nodata=2,
           key=dict(log_status="SKIPDATA"),
           expect=dict(interface_id="eni-11111111aaaaaaaaa", srcaddr=None, dstaddr=None, srcport=None,
                       protocol=None, packets=None, bytes=None, start=1431280876, end=1431280934, action=None)),
    # The last two lines end with "#..." annotations; they are records with the annotation dropped.
    Sample("aws-docs/vpc-flow-log-record-examples/v3-custom-nat-gateway.log", records=6, headers=1,
           key=dict(interface_id="eni-1111aaaa2222bbbb3", srcaddr="203.0.113.5"),
           expect=dict(instance_id="i-01234567890123456", dstaddr="10.0.1.5", pkt_srcaddr="203.0.113.5",
                       pkt_dstaddr="10.0.1.5", version=None, start=None)),
    # The last line holds a double space.
    Sample("aws-docs/vpc-flow-log-record-examples/v3-custom-tcp-flag-sequence.log", records=8, headers=1,
           key=dict(tcp_flags=19),
           expect=dict(version=3, vpc_id="vpc-abcdefab012345678", subnet_id="subnet-aaaaaaaa012345678",
                       account_id="123456789010", type="IPv4", srcaddr="10.0.0.62", dstaddr="52.213.180.42",
                       srcport=5001, dstport=43638, pkt_srcaddr="10.0.0.62", protocol=6, bytes=967, packets=14,
                       start=1566933133, end=1566933193, action="ACCEPT")),
    Sample("aws-docs/vpc-flow-log-record-examples/v3-custom-transit-gateway.log", records=4, headers=1,
           key=dict(interface_id="eni-11111111111111111"),
           expect=dict(version=3, account_id="123456789010", subnet_id="subnet-11111111aaaaaaaaa",
                       instance_id=None, srcaddr="10.40.1.175", dstaddr="10.40.2.236", srcport=39812, dstport=80,
                       tcp_flags=3, type="IPv4", pkt_srcaddr="10.20.33.164", pkt_dstaddr="10.40.2.236",
                       action="ACCEPT", log_status="OK", start=None)),
    Sample("aws-docs/vpc-flow-log-record-examples/v5-custom-service-traffic-path-flow-direction.log", records=2,
           headers=1, key=dict(flow_direction="egress"),
           expect=dict(version=5, srcaddr="10.0.0.71", dstaddr="52.95.128.179", srcport=34210, dstport=80,
                       start=1616729292, packets=7, bytes=471, account_id="123456789012",
                       instance_id="i-0c50d5961bcb2d47b", region="ap-southeast-2", az_id="apse2-az3",
                       sublocation_type=None, tcp_flags=3, pkt_src_aws_service=None, pkt_dst_aws_service="S3",
                       traffic_path=8)),
    Sample("elastic-beats/vpcflow/accept-reject-traffic.log", records=4, headers=1, key=dict(dstport=3389),
           expect=dict(srcaddr="78.24.182.42", dstaddr="158.109.0.1", srcport=49761, action="REJECT")),
    Sample("elastic-beats/vpcflow/bad.log", malformed=1),
    Sample("elastic-beats/vpcflow/custom-transit-gateway.log", records=1, fmt=TRANSIT17, key=dict(srcport=39812),
           expect=dict(interface_id="eni-33333333333333333", instance_id="i-01234567890123456",
                       dstaddr="10.40.2.236", tcp_flags=3, packets=None, action="ACCEPT")),
    # SKIPDATA, a blank line, the header again, then NODATA.
    Sample("elastic-beats/vpcflow/tcp-flag-sequence-skip-data.log", nodata=2, headers=2, blank=1,
           key=dict(log_status="NODATA"),
           expect=dict(version=3, vpc_id="vpc-abcdefab012345678", instance_id="i-01234567890123456",
                       type=None, srcaddr=None, srcport=None, bytes=None, start=1566848875, tcp_flags=None)),
    # v2 lines, then one ECS line and one Transit Gateway line that the v2 format cannot hold.
    Sample("elastic-integrations/vpcflow/deploy-tf-test-extra-samples.log", records=5, nodata=2, malformed=2,
           key=dict(dstport=3389), expect=dict(srcaddr="89.160.20.156", dstaddr="89.160.20.156", srcport=49761)),
    # Lines with values and log-status NODATA or SKIPDATA are not traffic.
    Sample("elastic-integrations/vpcflow/test-ecs-samples.log", records=4, nodata=6, fmt=ECS,
           key=dict(srcport=14797),
           expect=dict(version=3, account_id="000000000000", interface_id=None, srcaddr="81.2.69.192",
                       dstaddr="81.2.69.144", dstport=8080, protocol=6, packets=35, bytes=28455,
                       start=1755678694, end=1755678736, action="ACCEPT", log_status="OK", flow_direction="ingress",
                       traffic_path=None,
                       ecs_cluster_arn="arn:aws:ecs:us-east-1:000000000000:cluster/payments-cluster",
                       ecs_cluster_name="payments-cluster", ecs_container_instance_id="i-74911fdc5ae144248",
                       ecs_container_id="f006614f-149", ecs_second_container_id="baa46763-445",
                       ecs_service_name="backend-service",
                       ecs_task_definition_arn="arn:aws:ecs:us-east-1:000000000000:task-definition/frontend:19",
                       ecs_task_arn="arn:aws:ecs:us-east-1:000000000000:task/payments-cluster/546efe2c-008",
                       ecs_task_id="546efe2c-008")),
    Sample("elastic-integrations/vpcflow/test-extra-samples.log", records=5, nodata=2, key=dict(srcport=20641),
           expect=dict(srcaddr="78.24.182.42", dstaddr="158.109.0.1", dstport=22, action="ACCEPT")),
    # The header is repeated before every line.
    Sample("elastic-integrations/vpcflow/test-tcp-flag-sequence.log", records=1, nodata=2, headers=3,
           key=dict(log_status="OK"),
           expect=dict(srcaddr="52.213.180.42", srcport=43416, dstport=5001, bytes=568, packets=8, tcp_flags=2)),
    Sample("elastic-integrations/vpcflow/test-tgw-samples.log", records=3, nodata=7, fmt=TGW,
           key=dict(tgw_attachment_id="tgw-attach-0123abcd", dstport=8080),
           expect=dict(version=3, resource_type=None, account_id="748335378900", tgw_id="tgw-0a12bc34de56f7890",
                       tgw_src_vpc_account_id=None, tgw_src_vpc_id="vpc-0abc1234", tgw_dst_vpc_id="vpc-0def5678",
                       tgw_src_eni="eni-0ee5f66aa7bcc89d0", tgw_dst_eni="eni-0dd4ee5f66aa7bcc8",
                       srcaddr="216.160.83.56", dstaddr="89.160.20.128", srcport=36721, protocol=17, packets=13,
                       bytes=6842, start=1755592553, end=1755592580, log_status="OK", type=None,
                       packets_lost_no_route=None, tcp_flags=None, flow_direction="ingress", action=None)),
    # start 164000066 is in 1975: the sample's own typo, kept as written.
    Sample("elastic-integrations/vpcflow/test-v5-all-fields.log", records=1, fmt=V5_ALL, key=dict(srcport=50041),
           expect=dict(version=5, account_id="64111117617", interface_id="eni-069xxxxxb7a490", dstport=33004,
                       protocol=17, packets=52, bytes=1, start=164000066, end=1640000297, action="REJECT",
                       vpc_id="vpc-09676f97xxxxxb8a7", tcp_flags=1, pkt_dstaddr="10.200.0.80", region="us-east-1",
                       az_id="use1-az5", pkt_src_aws_service="AMAZON", pkt_dst_aws_service="CLOUDFRONT",
                       flow_direction="ingress", traffic_path=1)),
    Sample("elastic-integrations/vpcflow/test-v8-samples.log", nodata=1, fmt=ECS + " reject-reason",
           key=dict(srcport=42910),
           expect=dict(action="REJECT", log_status="NODATA", reject_reason="BPA",
                       ecs_cluster_name="backend-cluster", ecs_task_id="e504f037-35c")),
    Sample("elastic-integrations/vpcflow/test-with-message-field.log", nodata=1, key=dict(log_status="NODATA"),
           expect=dict(version=2, account_id="428961148399", interface_id="eni-0e0bf7be352692297",
                       start=1671029698, end=1671029728)),
    # Not AWS's Parquet schema: ports, protocol and counts are text with '-' and 'None'.
    Sample("flowlogs-reader/flows.parquet", records=1, nodata=2, key=dict(srcport=80),
           expect=dict(account_id="123456789010", interface_id="eni-202010ab", srcaddr="198.51.100.7",
                       dstport=100, protocol=8080, packets=None, action=None, log_status="NODATA")),
    Sample("flowlogs-reader/tgw-custom-header.log", records=1, headers=1, key=dict(resource_type="TransitGateway"),
           expect=dict(tgw_id="00000000", tgw_attachment_id="00000001", tgw_src_vpc_account_id="00000002",
                       tgw_pair_attachment_id="00000012", packets_lost_no_route=13, packets_lost_blackhole=14,
                       packets_lost_mtu_exceeded=15, packets_lost_ttl_expired=16, start=None)),
    Sample("flowlogs-reader/v2-default-records.log", records=3, nodata=2, key=dict(interface_id="eni-102010cd"),
           expect=dict(srcaddr="192.0.2.1", srcport=49152, dstport=443, packets=20, bytes=1680, action="REJECT")),
    # start and end in milliseconds.
    Sample("flowlogs-reader/v2-millisecond-timestamp.log", nodata=1, key=dict(interface_id="eni-4b118871"),
           expect=dict(start=1512564058, end=1512564059, log_status="SKIPDATA")),
    # Fields in alphabetical order.
    Sample("flowlogs-reader/v3-custom-header.log", records=2, headers=1, key=dict(srcport=443),
           expect=dict(account_id="000000000000", bytes=6392, dstaddr="172.18.160.93", dstport=47460,
                       end=1568300425, instance_id="i-06f9249b", packets=10, pkt_dstaddr="172.18.160.93",
                       pkt_srcaddr="192.168.0.1", protocol=6, srcaddr="172.18.160.68", start=1568300367,
                       subnet_id="subnet-089e7569", tcp_flags=19, type="IPv4", version=3, vpc_id="vpc-0461a061",
                       interface_id=None, log_status=None)),
    Sample("flowlogs-reader/v4-custom-header.log", records=2, headers=1, key=dict(srcport=8088),
           expect=dict(version=4, region="us-east-1", az_id="use1-az4", sublocation_type="outpost",
                       sublocation_id="outpostid04", tcp_flags=3, bytes=1698)),
    Sample("flowlogs-reader/v5-custom-header-with-bogus-line.log", records=2, headers=1, malformed=1,
           key=dict(flow_direction="egress"),
           expect=dict(account_id="999999999999", action="ACCEPT", az_id="use2-az2", bytes=3015,
                       dstaddr="198.51.100.6", dstport=443, end=1614866511, instance_id="i-00123456789abcdef",
                       interface_id="eni-00123456789abcdef", log_status="OK", packets=16, pkt_dst_aws_service="S3",
                       pkt_dstaddr="198.51.100.7", pkt_src_aws_service=None, pkt_srcaddr="192.0.2.156",
                       protocol=6, region="us-east-2", srcaddr="192.0.2.156", srcport=50318, start=1614866493,
                       sublocation_id=None, sublocation_type=None, subnet_id="subnet-0123456789abcdef",
                       tcp_flags=7, traffic_path=7, type="IPv4", version=5, vpc_id="vpc-04456ab739938ee3f")),
    Sample("panther-analysis/scenario-compromised-root-creds-vpcflow-v2.log", records=6, key=dict(srcport=58316),
           expect=dict(account_id="493859302102", srcaddr="52.216.229.53", dstaddr="172.31.77.31", dstport=443,
                       packets=19, bytes=3048576, start=1604271590, end=1604271595, action="ACCEPT")),
]


def test_every_flow_log_sample_in_the_corpus_is_covered(corpus: Path) -> None:
    sources = ["aws-docs/vpc-flow-log-record-examples/*", "elastic-beats/vpcflow/*", "elastic-integrations/vpcflow/*",
               "flowlogs-reader/*.log", "flowlogs-reader/*.parquet", "panther-analysis/*vpcflow*.log"]
    on_disk = {p.relative_to(corpus).as_posix() for pattern in sources for p in corpus.glob(pattern)}
    assert on_disk == {s.path for s in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.path.rsplit("/", 1)[-1])
def test_corpus_sample(corpus: Path, sample: Sample) -> None:
    path = corpus / sample.path
    fmt = parse_log_format(sample.fmt) if sample.fmt else None
    con, (q,) = load([path], default_fields=fmt)
    assert q == quality(path, sample.records, sample.nodata, sample.headers, sample.blank, sample.malformed)
    assert con.execute("SELECT count(*) FROM flow_logs").fetchall() == [(sample.records + sample.nodata,)]
    if sample.expect:
        got = one(con, **sample.key)
        assert {k: got[k] for k in sample.expect} == sample.expect


def test_whole_corpus_side_by_side_in_one_call(corpus: Path) -> None:
    """Every sample in one call, header-less ones read with the v2 default: each file keeps its own classes."""
    paths = [corpus / s.path for s in SAMPLES]
    con, got = load(paths)
    expected = []
    for s, p in zip(SAMPLES, paths):
        if s.fmt is None:
            expected.append(quality(p, s.records, s.nodata, s.headers, s.blank, s.malformed))
        else:  # a non-default header-less format: under the v2 default every line has the wrong field count
            expected.append(quality(p, malformed=len(p.read_text().splitlines())))
    assert got == tuple(expected)
    total = sum(q.records + q.nodata for q in got)
    assert con.execute("SELECT count(*) FROM flow_logs").fetchall() == [(total,)]
    # The alphabetical v3 header and the v5 header are mapped by name, not by position.
    assert one(con, srcport=8088, version=4)["sublocation_id"] == "outpostid04"
    assert one(con, "dstport", 50318)["pkt_dst_aws_service"] is None


# ------------------------------------------------------------------------------------------- S3-shaped trees

def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, gzipped when the name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def s3(root: Path, account: str, region: str, day: str, name: str) -> Path:
    return root / "AWSLogs" / account / "vpcflowlogs" / region / day / name


def test_default_and_custom_formats_side_by_side(tmp_path: Path) -> None:
    default = write(s3(tmp_path, "111122223333", "eu-west-1", "2024/05/01", "a.log.gz"), (
        f"{V2}\n"
        "2 111122223333 eni-0aaaaaaaaaaaaaaaa 10.0.0.1 10.0.0.2 40000 443 6 10 5000 1714521600 1714521660 ACCEPT OK\n"
        "\n"
        "2 111122223333 eni-0aaaaaaaaaaaaaaaa  10.0.0.1 10.0.0.3 40001 22 6 3 180 1714521601 1714521661 REJECT OK\n"
        "2 111122223333 eni-0aaaaaaaaaaaaaaaa - - - - - - - 1714521600 1714521660 - NODATA\n"
        f"{V2}\n"
        "2 111122223333 eni-0aaaaaaaaaaaaaaaa 10.0.0.1 10.0.0.4 40002 80 6 1 60 1714521602000 1714521662000 ACCEPT OK\n"
    ))
    # No account-id or region field: both come from the S3 path. The region field would win over the path.
    custom = write(s3(tmp_path, "444455556666", "us-east-2", "2024/05/01", "b.log.gz"), (
        "start srcaddr dstaddr dstport action log-status interface-id tcp-flags\n"
        "1714521603 192.0.2.9 10.1.0.5 3389 REJECT OK eni-0bbbbbbbbbbbbbbbb 2\n"
        "1714521604 192.0.2.9 10.1.0.5 abc REJECT OK eni-0bbbbbbbbbbbbbbbb 2\n"
    ))
    regional = write(s3(tmp_path, "777788889999", "us-east-1", "2024/05/01", "c.log"), (
        "version account-id region srcaddr dstaddr srcport dstport start log-status\n"
        "4 123412341234 eu-central-1 10.2.0.1 10.2.0.2 1234 53 1714521605 OK\n"
    ))
    # A CloudWatch Logs export: no header, each line after its event's timestamp; the source's format.
    exported = write(tmp_path / "export" / "000000.gz", (
        "2024-05-01T00:00:07.000Z 5 srcaddr-less line\n"
        "2024-05-01T00:00:06.000Z 1714521606 203.0.113.7 10.3.0.9 ACCEPT\n"
    ))
    files = [describe(p) for p in (default, custom, regional, exported)]
    con = duckdb.connect()
    got = load_flow_logs(con, files, window=WIDE, default_fields=parse_log_format("start srcaddr dstaddr action"))
    assert got == (quality(default, records=3, nodata=1, headers=2, blank=1),
                   quality(custom, records=1, headers=1, malformed=1),
                   quality(regional, records=1, headers=1),
                   quality(exported, records=1, malformed=1))
    double_space = one(con, "srcport", 40001)
    assert (double_space["srcaddr"], double_space["dstaddr"], double_space["bytes"]) == ("10.0.0.1", "10.0.0.3", 180)
    ms = one(con, "srcport", 40002)
    assert (ms["start"], ms["end"]) == (1714521602, 1714521662)
    nodata = one(con, "log_status", "NODATA")
    assert (nodata["srcaddr"], nodata["packets"], nodata["action"]) == (None, None, None)
    path_only = one(con, "dstport", 3389)
    assert (path_only["account_id"], path_only["region"], path_only["tcp_flags"], path_only["version"]) == (
        "444455556666", "us-east-2", 2, None)
    own_fields = one(con, "dstport", 53)
    assert (own_fields["account_id"], own_fields["region"], own_fields["version"]) == ("123412341234",
                                                                                        "eu-central-1", 4)
    v2_record = one(con, "srcport", 40000)
    assert (v2_record["account_id"], v2_record["region"]) == ("111122223333", "eu-west-1")
    cw = one(con, "start", 1714521606)
    assert (cw["srcaddr"], cw["dstaddr"], cw["action"], cw["account_id"]) == ("203.0.113.7", "10.3.0.9", "ACCEPT",
                                                                             None)


def test_window_is_half_open(tmp_path: Path) -> None:
    since, until = 1714521600, 1714525200
    lines = [f"2 111122223333 eni-0a 10.0.0.1 10.0.0.2 {port} 443 6 1 60 {start} {start + 60} ACCEPT OK"
             for port, start in ((1, since - 1), (2, since), (3, until - 1), (4, until))]
    text = write(tmp_path / "a.log", "\n".join(lines) + "\n")
    ms = write(tmp_path / "b.log", "\n".join(re.sub(r" (\d{10}) (\d{10}) ", r" \g<1>000 \g<2>000 ", line)
                                             for line in lines) + "\n")
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"srcport": pa.array([1, 2, 3, 4], pa.int32()),
                             "start": pa.array([since - 1, since, until - 1, until], pa.int64()),
                             "log_status": ["OK"] * 4}), parquet)
    window = TimeWindow(datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC))
    con, got = load([text, ms, parquet], window=window)
    # Every line is counted; only the ones that started inside the window are inserted.
    assert [q.records for q in got] == [4, 4, 4]
    assert con.execute("SELECT srcport, count(*) FROM flow_logs GROUP BY srcport ORDER BY srcport").fetchall() == [
        (2, 3), (3, 3)]


def test_a_format_without_start_is_kept_whatever_the_window(tmp_path: Path) -> None:
    path = write(tmp_path / "nat.log", "interface-id srcaddr dstaddr\neni-0a 10.0.1.5 203.0.113.5\n")
    con, (q,) = load([path], window=TimeWindow(datetime(2030, 1, 1), datetime(2030, 1, 2)))
    assert q == quality(path, records=1, headers=1)
    assert rows(con)[0]["srcaddr"] == "10.0.1.5"


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "m.log", (
        f"{V2}\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 40000 443 6 10 5000 1714521600 1714521660 ACCEPT OK\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 http 443 6 10 5000 1714521600 1714521660 ACCEPT OK\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 40001 443 6 10 5000 1714521600 1714521660 ACCEPT\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 40002 443 6 10 5000 1714521600 1714521660 ACCEPT OK extra\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 99999999999 443 6 10 5000 1714521600 1714521660 ACCEPT OK\n"
        "{\"message\": 12}\n"
        "{not json\n"
        "   \t \n"
        "-- ---\n"
        "2\t111122223333\teni-0a\t10.0.0.1\t10.0.0.2\t40003\t443\t6\t10\t5000\t1714521600\t1714521660\tACCEPT\tOK  \n"
    ))
    con, (q,) = load([path])
    assert q == quality(path, records=2, headers=1, blank=1, malformed=7)
    assert sorted(r["srcport"] for r in rows(con)) == [40000, 40003]


def test_a_file_holding_two_formats_maps_each_line_by_the_header_above_it(tmp_path: Path) -> None:
    path = write(tmp_path / "concatenated.log", (
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 1 443 6 10 5000 1714521600 1714521660 ACCEPT OK\n"
        "srcport dstport start log-status\n"
        "2 22 1714521601 OK\n"
        f"{V2}\n"
        "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 3 443 6 10 5000 1714521602 1714521660 ACCEPT OK\n"
        "srcport dstport start log-status\n"
        "4 22 1714521603 OK\n"
    ))
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    (q,) = load_flow_logs(con, [describe(path)], window=WIDE)
    assert q == quality(path, records=4, headers=3)
    assert con.execute("SELECT srcport, dstport, start FROM flow_logs ORDER BY srcport").fetchall() == [
        (1, 443, 1714521600), (2, 22, 1714521601), (3, 443, 1714521602), (4, 22, 1714521603)]
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]


def test_a_header_with_a_field_newer_than_the_reader_still_maps_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "v10.log", (
        "version account-id srcaddr dstaddr srcport dstport start log-status encryption-status\n"
        "10 111122223333 10.0.0.1 10.0.0.2 443 40000 1714521600 OK 1\n"
    ))
    con, (q,) = load([path])
    assert q == quality(path, records=1, headers=1)
    assert (one(con, "srcport", 443)["version"], one(con, "srcport", 443)["dstaddr"]) == (10, "10.0.0.2")


def test_parquet_in_hive_folders_takes_account_and_region_from_the_path(tmp_path: Path) -> None:
    folder = (tmp_path / "AWSLogs" / "aws-account-id=111122223333" / "aws-service=vpcflowlogs"
              / "aws-region=eu-west-1" / "year=2024" / "month=05" / "day=01" / "hour=13")
    folder.mkdir(parents=True)
    path = folder / "111122223333_vpcflowlogs_eu-west-1_fl-0a_20240501T1300Z_0a1b2c3d.log.parquet"
    # AWS's Parquet types (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html).
    pq.write_table(pa.table({
        "version": pa.array([5, 5], pa.int32()),
        "interface_id": ["eni-0a", "eni-0b"],
        "srcaddr": ["10.0.0.1", "-"],
        "srcport": pa.array([443, None], pa.int32()),
        "protocol": pa.array([6, None], pa.int32()),
        "packets": pa.array([7, None], pa.int64()),
        "start": pa.array([1714568400, 1714568401], pa.int64()),
        "log_status": ["OK", "NODATA"],
        "traffic_path": pa.array([1, None], pa.int32()),
    }), path)
    f = describe(path)
    assert (f.kind, f.account_id, f.region) == ("parquet", "111122223333", "eu-west-1")
    con, (q,) = load([path])
    assert q == quality(path, records=1, nodata=1)
    rec = one(con, "interface_id", "eni-0a")
    assert (rec["account_id"], rec["region"], rec["srcport"], rec["protocol"], rec["packets"], rec["traffic_path"],
            rec["version"]) == ("111122223333", "eu-west-1", 443, 6, 7, 1, 5)
    assert one(con, "interface_id", "eni-0b")["srcaddr"] is None


def test_parquet_files_of_several_schemas_in_one_call(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.parquet"
    pq.write_table(pa.table({"account_id": ["111122223333"], "srcport": pa.array([22], pa.int32()),
                             "start": pa.array([1714521600000], pa.int64()), "log_status": ["OK"]}), v2)
    v5 = tmp_path / "v5.parquet"
    pq.write_table(pa.table({"srcport": pa.array([23, 24], pa.int32()), "flow_direction": ["egress", "-"],
                             "traffic_path": pa.array([2, None], pa.int32()), "log_status": ["OK", "SKIPDATA"]}), v5)
    alien = tmp_path / "alien.parquet"
    pq.write_table(pa.table({"colour": ["red", "blue"]}), alien)
    con, got = load([v2, alien, v5])
    assert got == (quality(v2, records=1), quality(alien, malformed=2), quality(v5, records=1, nodata=1))
    assert con.execute("SELECT srcport, start, flow_direction, traffic_path, log_status FROM flow_logs "
                       "ORDER BY srcport").fetchall() == [(22, 1714521600, None, None, "OK"),
                                                          (23, None, "egress", 2, "OK"),
                                                          (24, None, None, None, "SKIPDATA")]


def test_bytes_that_are_not_utf8_make_their_line_malformed(tmp_path: Path) -> None:
    path = tmp_path / "latin1.log"
    path.write_bytes(f"{V2}\n".encode() +
                     b"2 111122223333 eni-0a 10.0.0.1 10.0.0.2 1 22 6 1 60 1714521600 1714521660 ACCEPT OK\n"
                     b"2 111122223333 eni-\xe9t\xe9 10.0.0.1 10.0.0.2 2 22 6 1 60 1714521600 1714521660 ACCEPT OK\n"
                     b"2 111122223333 eni-0a 10.0.0.1 10.0.0.2 3 22 6 1 60 1714521600 1714521660 ACCEPT OK\n")
    con, (q,) = load([path])
    assert q == quality(path, records=2, headers=1, malformed=1)
    assert con.execute("SELECT srcport FROM flow_logs ORDER BY 1").fetchall() == [(1,), (3,)]


def test_a_truncated_gzip_file_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    line = "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 1 22 6 1 60 1714521600 1714521660 ACCEPT OK\n"
    whole = gzip.compress((line * 2000).encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    good = tmp_path / "good.log"
    good.write_text(line * 3)
    con, (q, g) = load([cut, good])
    assert "truncated gzip stream" in q.error
    assert 0 < q.records < 2000 and q.malformed <= 1  # the lines before the cut, and the line it cut short
    assert g == quality(good, records=3)
    assert con.execute("SELECT count(*) FROM flow_logs").fetchall() == [(q.records + 3,)]


def test_a_file_listed_twice_is_read_once(corpus: Path) -> None:
    path = corpus / "flowlogs-reader/v2-default-records.log"
    con, got = load([path, path])
    assert got == (quality(path, records=3, nodata=2),) * 2
    assert con.execute("SELECT count(*) FROM flow_logs").fetchall() == [(5,)]


# --------------------------------------------------------------------------------------------------- read-once

def test_one_call_opens_each_file_once(tmp_path: Path, corpus: Path) -> None:
    tree = tmp_path / "tree"
    paths = [
        write(s3(tree, "111122223333", "eu-west-1", "2024/05/01", "a.log.gz"),
              (corpus / "flowlogs-reader/v5-custom-header-with-bogus-line.log").read_text()),
        write(s3(tree, "111122223333", "eu-west-1", "2024/05/01", "b.log.gz"),
              (corpus / "elastic-integrations/vpcflow/test-tcp-flag-sequence.log").read_text()),
        write(s3(tree, "111122223333", "eu-west-1", "2024/05/02", "c.log"),
              (corpus / "flowlogs-reader/v2-default-records.log").read_text()),
        write(tree / "export" / "d.log",
              (corpus / "elastic-integrations/vpcflow/test-with-message-field.log").read_text()),
    ]
    for name in ("e.parquet", "f.parquet"):  # one schema: both stream through one scan
        (tree / name).write_bytes((corpus / "flowlogs-reader/flows.parquet").read_bytes())
        paths.append(tree / name)
    files = discover(tree, ["text", "parquet"])
    assert sorted(f.path for f in files) == sorted(map(str, paths))
    con = duckdb.connect()
    with count_opens(tree) as opens:
        got = load_flow_logs(con, files, window=WIDE, batch_bytes=2**20)
    assert dict(opens) == {str(p): 1 for p in paths}
    assert sum(q.records + q.nodata for q in got) == con.execute("SELECT count(*) FROM flow_logs").fetchall()[0][0]
    assert sum(q.records for q in got) == 2 + 1 + 3 + 0 + 1 + 1


def test_count_opens_counts_every_open(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    twice, once = tmp_path / "a" / "twice.log", tmp_path / "once.log"
    twice.write_text("x")
    once.write_text("y")
    with count_opens(tmp_path) as opens:
        twice.read_text()
        twice.read_text()
        once.read_text()
        list((tmp_path / "a").iterdir())
    assert dict(opens) == {str(twice): 2, str(once): 1}


def test_small_batches_give_the_same_table_as_one_batch(corpus: Path) -> None:
    paths = [corpus / s.path for s in SAMPLES if s.fmt is None]
    one_batch, q1 = load(paths)
    per_file, q2 = load(paths, batch_bytes=1)
    assert q1 == q2
    table = "SELECT * FROM flow_logs ORDER BY ALL"
    assert one_batch.execute(table).fetchall() == per_file.execute(table).fetchall()


def test_the_reader_leaves_no_temporary_objects_and_appends_to_an_existing_table(corpus: Path) -> None:
    path = corpus / "flowlogs-reader/v2-default-records.log"
    con, _ = load([path])
    load_flow_logs(con, [describe(path)], window=WIDE)
    assert con.execute("SELECT count(*) FROM flow_logs").fetchall() == [(10,)]
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("flow_logs",)]
    assert con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == []


def test_inputs_that_cannot_be_read_are_named_and_skipped(tmp_path: Path) -> None:
    con = duckdb.connect()
    gone, fake = tmp_path / "gone.log", tmp_path / "fake.parquet"
    fake.write_text("2 111122223333 eni-0a - - - - - - - 1714521600 1714521660 - NODATA\n")
    (missing,) = load_flow_logs(con, [InputFile(str(gone), 1, "text")], window=WIDE)
    assert missing.error.startswith("cannot be read: No such file")
    (not_parquet,) = load_flow_logs(con, [describe(fake)], window=WIDE)
    assert not_parquet.error.startswith("not a readable Parquet file") and not_parquet.records == 0
    with pytest.raises(ValueError, match="not json"):
        load_flow_logs(con, [InputFile(str(tmp_path / "x.json"), 1, "json")], window=WIDE)
    with pytest.raises(ValueError, match="vpc-id"):
        load_flow_logs(con, [], window=WIDE, default_fields=("version", "vpc-id"))


# -------------------------------------------------------------------------------------------- fields & formats

def test_fields_follow_aws_field_table(corpus: Path) -> None:
    import csv
    with open(corpus / "aws-docs/vpc-flow-log-fields.csv", newline="") as f:
        table = list(csv.DictReader(f))
    parquet = {"INT_32": "INTEGER", "INT_64": "BIGINT", "STRING": "VARCHAR"}
    assert [(s.name, s.version) for s in FIELDS[:29]] == [(r["field"], int(r["introduced_in_version"]))
                                                          for r in table]
    for spec, row in zip(FIELDS, table):
        # The Athena DDL types protocol BIGINT though its Parquet type is INT_32.
        assert spec.type == ("BIGINT" if spec.name == "protocol" else parquet[row["parquet_type"]])
    assert DEFAULT_FORMAT == " ".join(f"${{{r['field']}}}" for r in table if r["in_default_format"] == "yes")
    assert len({s.name for s in FIELDS}) == len(FIELDS) == 58
    assert {s.name for s in FIELDS} >= set(TGW.split()) | set(ECS.split()) | {"reject-reason"}


def test_table_columns_follow_the_athena_ddl(corpus: Path) -> None:
    ddl = (corpus / "aws-docs/athena/vpc-flow-logs-ddl-date-partition.sql").read_text()
    body = ddl[ddl.index("`vpc_flow_logs` (") + len("`vpc_flow_logs` ("):ddl.index("PARTITIONED BY")]
    athena = {"int": "INTEGER", "bigint": "BIGINT", "string": "VARCHAR"}
    columns = [(name.strip("`"), athena[type_]) for name, type_ in re.findall(r"^\s*(`?\w+`?) (\w+),?$", body, re.M)]
    assert len(columns) == 29
    assert list(TABLE_COLUMNS[:29]) == columns
    assert all(c == s.name.replace("-", "_") for (c, _), s in zip(TABLE_COLUMNS, FIELDS))
    con = duckdb.connect()
    create_table(con)
    create_table(con)
    assert [(r[0], r[1]) for r in con.execute("DESCRIBE flow_logs").fetchall()] == list(TABLE_COLUMNS)


@pytest.mark.parametrize(("fmt", "columns"), [
    ("${version} ${vpc-id} ${end}", ("version", "vpc_id", "end")),
    ("version  vpc-id\tpkt-src-aws-service", ("version", "vpc_id", "pkt_src_aws_service")),
    (DEFAULT_FORMAT, tuple(V2.replace("-", "_").split())),
    (TGW, tuple(TGW.replace("-", "_").split())),
])
def test_parse_log_format(fmt: str, columns: tuple[str, ...]) -> None:
    assert parse_log_format(fmt) == columns


@pytest.mark.parametrize(("fmt", "message"), [
    ("${version} ${vpc_id}", "unknown flow-log field 'vpc_id' (did you mean 'vpc-id'?)"),
    ("${version} ${srcadr}", "unknown flow-log field 'srcadr' (did you mean 'srcaddr'?)"),
    ("${version} ${nothing-like-it-at-all}", "unknown flow-log field 'nothing-like-it-at-all'"),
    ("${srcaddr} ${srcaddr}", "flow-log field 'srcaddr' appears twice in the format"),
    ("   ", "a flow-log format needs at least one field"),
])
def test_parse_log_format_rejects(fmt: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_log_format(fmt)
    assert str(raised.value) == message


# ------------------------------------------------------------------------------------------- pruning (files.py)

DAY = timedelta(days=1)
MAY1 = TimeWindow(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


@pytest.mark.parametrize(("path", "kept"), [
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/04/30/a.log.gz", False),  # ends when the window starts
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/01/a.log.gz", True),
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/02/a.log.gz", True),  # late deliveries of May 1st
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/03/a.log.gz", False),  # starts at until + lag
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/04/30/23/a.log.gz", False),
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/01/00/a.log.gz", True),
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/02/23/a.log.gz", True),
    ("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/03/00/a.log.gz", False),
    ("AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=eu-west-1/"
     "year=2024/month=04/day=30/hour=23/a.parquet", False),
    ("AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=eu-west-1/"
     "year=2024/month=5/day=2/hour=0/a.parquet", True),
    ("AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=eu-west-1/"
     "year=2024/month=05/day=03/hour=00/a.parquet", False),
    ("exports/flowlogs/a.log.gz", True),  # undated: never pruned
    ("2024/13/45/a.log.gz", True),  # not a date: undated
])
def test_may_hold(path: str, kept: bool) -> None:
    f = describe(path, size=0)
    assert may_hold(f, MAY1, DAY) is kept
    assert prune([f], MAY1, DAY) == ([f] if kept else [])


def test_folder_spans() -> None:
    daily = describe("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/01/a.log.gz", size=0)
    hourly = describe("AWSLogs/111122223333/vpcflowlogs/eu-west-1/2024/05/01/13/a.log.gz", size=0)
    hive = describe("x/year=2024/month=05/day=01/hour=13/a.parquet", size=0)
    undated = describe("exports/a.log", size=0)
    assert (daily.folder_time, daily.folder_span) == (datetime(2024, 5, 1, tzinfo=UTC), DAY)
    assert (hourly.folder_time, hourly.folder_span) == (datetime(2024, 5, 1, 13, tzinfo=UTC), timedelta(hours=1))
    assert (hive.folder_time, hive.folder_span) == (datetime(2024, 5, 1, 13, tzinfo=UTC), timedelta(hours=1))
    assert (undated.folder_time, undated.folder_span) == (None, None)


def test_a_record_of_the_last_hour_delivered_the_next_day_is_read(tmp_path: Path) -> None:
    last_hour = int(datetime(2024, 5, 1, 23, 58, tzinfo=UTC).timestamp())
    line = "2 111122223333 eni-0a 10.0.0.1 10.0.0.2 {port} 22 6 1 60 {start} {end} ACCEPT OK\n"
    for day, port, start in (("2024/04/30", 1, last_hour - 2 * 86400), ("2024/05/01", 2, last_hour - 3600),
                             ("2024/05/02", 3, last_hour), ("2024/05/03", 4, last_hour + 86400)):
        write(s3(tmp_path, "111122223333", "eu-west-1", day, "a.log.gz"),
              f"{V2}\n" + line.format(port=port, start=start, end=start + 60))
    files = prune(discover(tmp_path, ["text"]), MAY1, DAY)
    assert [f.folder_time.day for f in files] == [1, 2]
    con = duckdb.connect()
    load_flow_logs(con, files, window=MAY1)
    assert con.execute("SELECT srcport FROM flow_logs ORDER BY srcport").fetchall() == [(2,), (3,)]
