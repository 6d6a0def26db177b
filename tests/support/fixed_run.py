"""A fixed run, built from the built-in checks' own title and remediation templates over hand-made rows, with the
inventory's names: the report HTML and the mail of it are golden files (tests/golden/html, tests/golden/email), and
the browser test sorts and filters its tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from auditor.builtins import builtins
from auditor.evaluate import check_result
from auditor.models import (
    Change,
    DataQuality,
    InterfaceName,
    Names,
    QueryRun,
    QueryStats,
    ResolvedFinding,
    RunRecord,
    Severity,
    TimeWindow,
    TrendPoint,
)

UTC = timezone.utc
WINDOW = TimeWindow(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
PREVIOUS = TimeWindow(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
NAMES = Names({"eni-0be25c53900d63717": InterfaceName("web-1", "i-03d9ae94fb7151c30"),
               "eni-07a93e423b3ff6908": InterfaceName("bastion", "i-0db756afc278d47b2"),
               "eni-05e533b585d4529e5": InterfaceName("", "", "ELB app/www-prod/50dc6c495c0c9188")},
              {"sg-0f92669b1becefdac": "bastion", "sg-03ec254b0bfe1336f": "batch", "sg-0babb07df2bfda6d9": "ftp-legacy"})

EXPOSED = ("interface_id", "dstport", "protocol", "accepted_flows", "distinct_sources", "public_sources",
           "sample_sources", "world_open", "severity")
EXPOSED_ROWS = [
    dict(zip(EXPOSED, ("eni-0be25c53900d63717", 3306, 6, 676, 5, 3, ["203.0.113.9", "198.51.100.7", "192.0.2.44"],
                       True, "high"))),
    dict(zip(EXPOSED, ("eni-07a93e423b3ff6908", 22, 6, 50, 2, 2, ["203.0.113.45", "192.0.2.10"], False, "high"))),
    dict(zip(EXPOSED, ("eni-07a93e423b3ff6908", 3389, 6, 0, 0, 0, [], True, "medium"))),
    dict(zip(EXPOSED, ("eni-05e533b585d4529e5", 443, 6, 1071, 881, 881, ["37.87.142.139"], True, "info"))),
]
CHANGES = ("event_id", "event_time", "event_name", "actor", "source_ip", "error_code", "group_id", "rules", "summary",
           "user_agent", "account_id", "region", "severity")
CHANGE_ROWS = [
    dict(zip(CHANGES, ("40d3614d-85b0-4e1c-9b1f-afac80029dd8", "2026-11-12T19:05:11Z", "ModifySecurityGroupRules",
                       "arn:aws:sts::111122223333:assumed-role/AdminRole/alice@example.com", "192.0.2.10", None,
                       "sg-0f92669b1becefdac",
                       [{"direction": "ingress", "protocol": 6, "from_port": 3389, "to_port": 3389,
                         "source": "0.0.0.0/0", "rule_id": "sgr-03f0cac4a5583a198"}],
                       "opened RDP (tcp/3389) to the internet", "console.amazonaws.com", "111122223333", "us-east-1",
                       "high"))),
    dict(zip(CHANGES, ("6c0018d6-f7c0-4602-9bd1-f3fc1d9f29eb", "2026-11-13T10:23:00Z", "AuthorizeSecurityGroupIngress",
                       "arn:aws:sts::111122223333:assumed-role/DeveloperRole/dave@example.com", "192.0.2.12",
                       "Client.UnauthorizedOperation", "sg-03ec254b0bfe1336f",
                       [{"direction": "ingress", "protocol": 6, "from_port": 5432, "to_port": 5432,
                         "source": "0.0.0.0/0"}],
                       "tried to open PostgreSQL (tcp/5432) to the internet and was refused "
                       "(Client.UnauthorizedOperation)",
                       "aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 lang/python#3.12.6",
                       "111122223333", "us-east-1", "low"))),
]


def _query(check_id: str) -> tuple[QueryRun, ...]:
    stats = QueryStats("local", f"SELECT 1 -- {check_id}", duration_s=0.42, bytes_scanned=115_000,
                       params={"since": WINDOW.since, "allowed_public_ports": [80, 443]})
    return (QueryRun("query", "local", f"SELECT 1 -- {check_id}", stats, 4),)


def fixed_record() -> RunRecord:
    checks = builtins().checks
    exposed = check_result(checks.get("exposed_well_known_ports"), EXPOSED, EXPOSED_ROWS,
                           _query("exposed_well_known_ports"), names=NAMES)
    changes = check_result(checks.get("sg_changes"), CHANGES, CHANGE_ROWS, _query("sg_changes"), names=NAMES)
    marks = [(Change.ESCALATED, Severity.MEDIUM), (Change.NEW, None), (Change.PERSISTING, None),
             (Change.DE_ESCALATED, Severity.LOW)]
    exposed = replace(exposed, findings=tuple(replace(f, change=c, previous_severity=p)
                                              for f, (c, p) in zip(exposed.findings, marks)),
                      resolved=(ResolvedFinding("ab" * 16, "SSH (tcp/22) on web-2 (i-0aa, eni-0aa) accepted 12 flows "
                                                "from 1 internet address", Severity.HIGH, "resolved"),),
                      trend=tuple(TrendPoint(f"r{i}", PREVIOUS.until, v) for i, v in enumerate((2, 3, 4, 3, 4))))
    changes = replace(changes, findings=tuple(replace(f, change=Change.NEW) for f in changes.findings),
                      trend=(TrendPoint("r0", PREVIOUS.until, 3), TrendPoint("r1", WINDOW.until, 2)))
    return RunRecord("fixed-01", WINDOW, "local", datetime(2026, 11, 17, 6, tzinfo=UTC),
                     datetime(2026, 11, 17, 6, 1, 30, tzinfo=UTC), "0.1.0", (exposed, changes),
                     DataQuality(files_read=12, files_present=12), inventory_captured_at=WINDOW.until,
                     previous_run_id="prev-00", previous_window=PREVIOUS, accounts=("111122223333",),
                     regions=("us-east-1",))
