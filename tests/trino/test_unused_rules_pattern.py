"""The well-known query for unused security-group rules reads the rule IDs out of CloudTrail: it unnests
``responseElements.securityGroupRuleSet.items`` as ``ARRAY(MAP(VARCHAR, JSON))`` and casts each rule ID to VARCHAR.
On Athena that gives the bare ID (``sgr-...``); the local engine must too, or no rule ever matches (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.support.flowdata import write_config
from tests.support.trail import event, write_trail

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "elastic-integrations" / "cloudtrail"

RULES = """
WITH authorized AS (
  SELECT eventid,
         CAST(json_extract(responseelements, '$.securityGroupRuleSet.items') AS ARRAY(MAP(VARCHAR, JSON))) AS items
  FROM cloudtrail
  WHERE eventname IN ('AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress')
)
SELECT CAST(item['securityGroupRuleId'] AS VARCHAR) AS rule_id,
       CAST(element_at(item, 'groupId') AS VARCHAR) AS group_id,
       CAST(item['fromPort'] AS BIGINT) AS from_port,
       CAST(item['isEgress'] AS BOOLEAN) AS is_egress,
       CAST(element_at(item, 'cidrIpv4') AS VARCHAR) AS cidr
FROM authorized
CROSS JOIN UNNEST(items) AS t(item)
ORDER BY rule_id
"""


def _rule(rule_id: str, port: int, cidr: str, egress: bool = False) -> dict:
    return {"securityGroupRuleId": rule_id, "groupId": "sg-0a1b2c3d", "groupOwnerId": "111122223333",
            "isEgress": egress, "ipProtocol": "tcp", "fromPort": port, "toPort": port, "cidrIpv4": cidr}


def _query(config: Path, sql: str) -> list[dict]:
    r = CliRunner().invoke(main, ["query", "--sql", sql, "--source", "cloudtrail", "--config", str(config),
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_rule_ids_come_back_bare(tmp_path):
    items = [_rule("sgr-0123456789abcdef0", 22, "203.0.113.0/24"), _rule("sgr-0fedcba9876543210", 443, "0.0.0.0/0")]
    write_trail(tmp_path / "trail", [
        event("AuthorizeSecurityGroupIngress", {"groupId": "sg-0a1b2c3d"},
              {"_return": True, "securityGroupRuleSet": {"items": items}}),
        event("AuthorizeSecurityGroupEgress", {"groupId": "sg-0a1b2c3d"},
              {"_return": True, "securityGroupRuleSet": {"items": [_rule("sgr-0aaaabbbbccccdddd", 0, "10.0.0.0/8",
                                                                          egress=True)]}},
              time="2026-11-11T08:00:00Z"),
    ])
    config = write_config(tmp_path, """
        sources:
          cloudtrail: trail
        window: {since: 2026-11-09, until: 2026-11-16}
        """)
    assert _query(config, RULES) == [
        {"rule_id": "sgr-0123456789abcdef0", "group_id": "sg-0a1b2c3d", "from_port": 22, "is_egress": False,
         "cidr": "203.0.113.0/24"},
        {"rule_id": "sgr-0aaaabbbbccccdddd", "group_id": "sg-0a1b2c3d", "from_port": 0, "is_egress": True,
         "cidr": "10.0.0.0/8"},
        {"rule_id": "sgr-0fedcba9876543210", "group_id": "sg-0a1b2c3d", "from_port": 443, "is_egress": False,
         "cidr": "0.0.0.0/0"},
    ]
    # and the IDs match the inventory's bare IDs, which is what the pattern is for
    joined = _query(config, f"SELECT count(*) AS matched FROM ({RULES}) AS r "
                            "WHERE r.rule_id IN ('sgr-0123456789abcdef0', 'sgr-0fedcba9876543210')")
    assert joined == [{"matched": 2}]


def test_a_real_cloudtrail_event(tmp_path):
    sample = CORPUS / "test-authorize-security-group-ingress-json.log"
    if not sample.exists():
        pytest.skip("../shared/corpus is not present")
    events = [json.loads(line) for line in sample.read_text().splitlines() if line.strip()]
    write_trail(tmp_path / "trail", events, day="2024/10/14")
    config = write_config(tmp_path, """
        sources:
          cloudtrail: trail
        window: {since: 2024-10-14, until: 2024-10-15}
        """)
    rows = _query(config, RULES)
    assert [r["rule_id"] for r in rows] == ["sgr-027eb7c59241731e0"]
    assert rows[0]["from_port"] == 22 and rows[0]["cidr"] == "203.0.113.0/24"


def test_auditor_query_refuses_with_the_position_and_the_alternative(tmp_path):
    write_trail(tmp_path / "trail", [event("CreateSecurityGroup", {"groupName": "web"}, {"groupId": "sg-9"})])
    config = write_config(tmp_path, """
        sources:
          cloudtrail: trail
        window: {since: 2026-11-09, until: 2026-11-16}
        """)
    r = CliRunner().invoke(main, ["query", "--sql", "SELECT eventname,\n  approx_distinct(sourceipaddress) AS n "
                                  "FROM cloudtrail GROUP BY eventname", "--source", "cloudtrail", "--config",
                                  str(config)])
    assert r.exit_code == 2, r.output
    assert "query:2:3: approx_distinct gives engine-dependent numbers" in r.output
    assert "count(DISTINCT ...)" in r.output and "Traceback" not in r.output
