"""CloudTrail: the security-group story of each week, read-only noise, and the log files (with a duplicate
delivery and a digest file that readers must skip).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditor.demo.flows import Block, WeekPlan, pick
from auditor.demo.world import (
    ACCOUNT_ID,
    BRUTE_FORCE_IP,
    CORP_IP,
    DR_REGION,
    ENIS,
    EXPOSED_PORT,
    GROUPS,
    ORG_ID,
    REGION,
    SCANNER_IP,
    SUBNETS,
    TRAIL_BUCKET,
    TRAIL_NAME,
    as_datetime,
    gzip_bytes,
    iso_text,
    rid,
    stable_token,
    stamp_text,
    write_file,
)


@dataclass(frozen=True)
class _Actor:
    kind: str  # "role" | "user" | "service"
    name: str  # role or user name
    session: str
    user_agent: str
    source_ip: str
    mfa: bool = False
    console: bool = False
    invoked_by: str | None = None


_ALNUM_UPPER = string.ascii_uppercase + string.digits
_CLI_UA = ("aws-cli/2.17.60 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 lang/python#3.12.6 "
           "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#ec2.{cmd}")


_ACTORS = {
    "alice": _Actor("role", "AdminRole", "alice@example.com", "console.ec2.amazonaws.com", CORP_IP, mfa=True,
                    console=True),
    "bob": _Actor("role", "AdminRole", "bob@example.com", "console.ec2.amazonaws.com", "192.0.2.11", mfa=True,
                  console=True),
    "dave": _Actor("role", "DeveloperRole", "dave@example.com", _CLI_UA, "192.0.2.12"),
    "legacy": _Actor("user", "legacy-ops", "", "Boto/2.49.0 Python/2.7.18 Linux/4.14.256-197.484.amzn2.x86_64",
                     "54.210.33.17"),
    "ci": _Actor("role", "ci-deployer", "GitHubActions",
                 "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
                 "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.2 ua/2.1 "
                 "os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.181.0", "20.51.200.14"),
    "guard": _Actor("role", "security-automation", "ssh-guard",
                    "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.224-233.876.amzn2.x86_64 "
                    "md/arch#x86_64 lang/python#3.12.5 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
                    "cfg/retry-mode#legacy Botocore/1.34.145", "3.91.171.20"),
    "monitor": _Actor("role", "ReadOnlyMonitoring", "inventory-collector",
                      "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.173.0",
                      "54.210.33.17"),
    # The legacy-ops access key, leaked, used from the host that scans the load balancers (issue 21's story).
    "intruder": _Actor("user", "legacy-ops", "", "aws-cli/1.16.312 Python/3.6.9 Linux/4.15.0-65-generic "
                       "botocore/1.13.48", SCANNER_IP),
    "config": _Actor("service", "AWSServiceRoleForConfig", "AWSConfig-Describe", "config.amazonaws.com",
                     "config.amazonaws.com", invoked_by="config.amazonaws.com"),
}


class Trail:
    """Builds CloudTrail records.

    Fields: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (epoch, region, record)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def identity(self, actor: _Actor, t: int) -> dict[str, Any]:
        day = as_datetime(t).strftime("%Y%m%d")
        if actor.kind == "user":
            return {"type": "IAMUser", "principalId": "AIDA" + stable_token(actor.name, _ALNUM_UPPER, 17),
                    "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{actor.name}", "accountId": ACCOUNT_ID,
                    "accessKeyId": "AKIA" + stable_token("key:" + actor.name, _ALNUM_UPPER, 16),
                    "userName": actor.name}
        role_path = "aws-service-role/config.amazonaws.com/" if actor.kind == "service" else ""
        role_pid = "AROA" + stable_token(actor.name, _ALNUM_UPPER, 17)
        ident: dict[str, Any] = {
            "type": "AssumedRole", "principalId": f"{role_pid}:{actor.session}",
            "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{actor.name}/{actor.session}", "accountId": ACCOUNT_ID,
            "accessKeyId": "ASIA" + stable_token(f"{actor.name}/{actor.session}/{day}", _ALNUM_UPPER, 16),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_pid,
                                  "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role_path}{actor.name}",
                                  "accountId": ACCOUNT_ID, "userName": actor.name},
                "attributes": {"creationDate": iso_text(t - self.rng.randint(60, 3000)),
                               "mfaAuthenticated": "true" if actor.mfa else "false"}}}
        if actor.invoked_by:
            ident["invokedBy"] = actor.invoked_by
        return ident

    def event(self, t: int, name: str, who: str, request: Any, response: Any = "ok", *, region: str = REGION,
              source: str = "ec2.amazonaws.com", read_only: bool = False,
              error: tuple[str, str] | None = None) -> dict[str, Any]:
        actor = _ACTORS[who]
        request_id = self.uuid()
        if response == "ok":
            response = {"requestId": request_id, "_return": True}
        ua = actor.user_agent.format(cmd=_cli_command(name))
        ev: dict[str, Any] = {"eventVersion": "1.10", "userIdentity": self.identity(actor, t), "eventTime": iso_text(t),
                              "eventSource": source, "eventName": name, "awsRegion": region,
                              "sourceIPAddress": actor.source_ip, "userAgent": ua}
        if error:
            ev["errorCode"], ev["errorMessage"] = error
            response = None
        ev.update({"requestParameters": request, "responseElements": response, "requestID": request_id,
                   "eventID": self.uuid(), "readOnly": read_only, "eventType": "AwsApiCall",
                   "managementEvent": True, "recipientAccountId": ACCOUNT_ID, "eventCategory": "Management"})
        if actor.kind != "service":
            host = f"{source.split('.')[0]}.{region}.amazonaws.com" if source == "ec2.amazonaws.com" else source
            ev["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": host}
        if actor.console:
            ev["sessionCredentialFromConsole"] = "true"
        self.events.append((t, region, ev))
        return ev


def _cli_command(event_name: str) -> str:
    out = "".join("-" + c.lower() if c.isupper() else c for c in event_name)
    return out.lstrip("-")


def _perm(proto: str, from_port: int, to_port: int, cidr: str | None = None, cidr6: str | None = None) -> dict:
    """One ``ipPermissions.items[]`` entry as CloudTrail records it (empty lists logged as ``{}``)."""
    return {"ipProtocol": proto, "fromPort": from_port, "toPort": to_port, "groups": {},
            "ipRanges": {"items": [{"cidrIp": cidr}]} if cidr else {},
            "ipv6Ranges": {"items": [{"cidrIpv6": cidr6}]} if cidr6 else {}, "prefixListIds": {}}


def _rule_set(group: str, rule_id: str, egress: bool, proto: str, from_port: int, to_port: int, cidr: str) -> dict:
    return {"items": [{"groupOwnerId": ACCOUNT_ID, "groupId": group, "securityGroupRuleId": rule_id,
                       "isEgress": egress, "ipProtocol": proto, "fromPort": from_port, "toPort": to_port,
                       "cidrIpv4": cidr,
                       "securityGroupRuleArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group-rule/{rule_id}"}]}


def _authorize(tr: Trail, t: int, who: str, group: str, proto: str, from_port: int, to_port: int, cidr: str,
               *, egress: bool = False, rule_key: str) -> dict:
    name = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
    request = {"groupId": group, "ipPermissions": {"items": [_perm(proto, from_port, to_port, cidr)]}}
    ev = tr.event(t, name, who, request, response=None)
    ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                              "securityGroupRuleSet": _rule_set(group, rid("sgr", rule_key), egress, proto,
                                                                from_port, to_port, cidr)}
    return ev


def cloudtrail_story(tr: Trail, block: Block, plan: WeekPlan) -> dict[str, Any]:
    """Every security-group change the checks look for, once per week, in two alternating variants."""
    rng = tr.rng
    lo, hi = block.since, block.until
    g = {k: grp.group_id for k, grp in GROUPS.items()}
    e = ENIS
    tag = as_datetime(lo).strftime("%Y%m%d")

    def when(lo_: int = lo, hi_: int = hi) -> int:
        return pick(rng, lo_ + 1800, hi_ - 1800)

    # 22 opened to the world on the app servers' group from the console, and closed again a few hours later.
    opened = _authorize(tr, plan.sg_opened_at, "alice", g["app-servers"], "tcp", 22, 22, "0.0.0.0/0",
                        rule_key=f"app-servers/open22/{tag}")
    tr.event(plan.sg_closed_at, "RevokeSecurityGroupIngress", "bob",
             {"groupId": g["app-servers"], "ipPermissions": {"items": [_perm("tcp", 22, 22, "0.0.0.0/0")]}})

    # The legacy flat request shape (cidrIp/fromPort/toPort/ipProtocol at the top, ipPermissions empty), as old
    # SDKs still send it; these calls created the rules the inventory shows unused.
    if block.variant == 1:
        legacy = (g["bastion"], 3389, "0.0.0.0/0", "bastion/2")
    else:
        legacy = (g["cache-redis"], 8080, "10.0.0.0/8", "cache-redis/2")
    ev = tr.event(when(), "AuthorizeSecurityGroupIngress", "legacy",
                  {"groupId": legacy[0], "ipPermissions": {}, "ipProtocol": "tcp", "fromPort": legacy[1],
                   "toPort": legacy[1], "cidrIp": legacy[2]}, response=None)
    ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                              "securityGroupRuleSet": _rule_set(legacy[0], rid("sgr", legacy[3]), False, "tcp",
                                                                legacy[1], legacy[1], legacy[2])}

    # A developer tries to open PostgreSQL to the world and is refused.
    denied = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{g['db-postgres']}"
    who = tr.identity(_ACTORS["dave"], lo)["arn"]
    encoded = base64.urlsafe_b64encode(rng.randbytes(180)).decode().rstrip("=")
    tr.event(when(), "AuthorizeSecurityGroupIngress", "dave",
             {"groupId": g["db-postgres"], "ipPermissions": {"items": [_perm("tcp", 5432, 5432, "0.0.0.0/0")]}},
             error=("Client.UnauthorizedOperation",
                    f"You are not authorized to perform this operation. User: {who} is not authorized to perform: "
                    f"ec2:AuthorizeSecurityGroupIngress on resource: {denied} because no identity-based policy "
                    f"allows the ec2:AuthorizeSecurityGroupIngress action. Encoded authorization failure message: "
                    f"{encoded}"))

    # World-open egress from the app servers (SMTP one week, 4444 the other): the inventory keeps both rules.
    port, rule_key = (25, "app-servers/9") if block.variant == 1 else (4444, "app-servers/10")
    _authorize(tr, when(), "ci", g["app-servers"], "tcp", port, port, "0.0.0.0/0", egress=True, rule_key=rule_key)

    # A group is created: the partner FTP group that is never attached, or a canary that is deleted again.
    if block.variant == 1:
        t = when()
        ev = tr.event(t, "CreateSecurityGroup", "ci",
                      {"groupName": "ftp-partner-legacy", "groupDescription": "Partner FTP (decommissioned)",
                       "vpcId": SUBNETS["public-a"].vpc_id}, response=None)
        ev["responseElements"] = {"requestId": ev["requestID"], "_return": True,
                                  "groupId": g["ftp-partner-legacy"],
                                  "securityGroupArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/"
                                                      f"{g['ftp-partner-legacy']}"}
        _authorize(tr, t + rng.randint(20, 90), "ci", g["ftp-partner-legacy"], "tcp", 20, 21, "0.0.0.0/0",
                   rule_key="ftp-partner-legacy/1")
    else:
        t = when(lo, hi - 4 * 3600)
        canary = rid("sg", f"canary/{tag}")
        ev = tr.event(t, "CreateSecurityGroup", "alice",
                      {"groupName": f"canary-{tag}", "groupDescription": "connectivity canary",
                       "vpcId": SUBNETS["public-a"].vpc_id}, response=None)
        ev["responseElements"] = {"requestId": ev["requestID"], "_return": True, "groupId": canary,
                                  "securityGroupArn": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{canary}"}
        tr.event(t + rng.randint(3600, 3 * 3600), "DeleteSecurityGroup", "alice", {"groupId": canary})

    # ModifySecurityGroupRules wraps its request in capitalised keys
    # (see the cloud-trail-lake-query-samples ec2-public-security-group query). The older week's change is what
    # opened MySQL to the world.
    if block.variant == 1:
        assert plan.modify_mysql_at is not None
        mod = (plan.modify_mysql_at, g["db-mysql-legacy"], "db-mysql-legacy/1", EXPOSED_PORT, "partner access")
    else:
        mod = (when(), g["bastion"], "bastion/2", 3389, "temp vendor RDP")
    ev = tr.event(mod[0], "ModifySecurityGroupRules", "alice", {"ModifySecurityGroupRulesRequest": {
        "GroupId": mod[1], "SecurityGroupRule": {
            "SecurityGroupRuleId": rid("sgr", mod[2]), "tag": 1,
            "SecurityGroupRule": {"CidrIpv4": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": mod[3],
                                  "ToPort": mod[3], "Description": mod[4]}}}}, response=None)
    ev["responseElements"] = {"ModifySecurityGroupRulesResponse": {
        "requestId": ev["requestID"], "return": True, "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/"}}

    # Groups swapped on an interface (the groupSet form of ModifyNetworkInterfaceAttribute).
    eni, grp = (e["mysql"], "db-mysql-legacy") if block.variant == 1 else (e["app-2"], "app-servers")
    tr.event(when(), "ModifyNetworkInterfaceAttribute", "ci",
             {"networkInterfaceId": eni.eni_id, "groupSet": {"items": [{"groupId": g[grp]}]}})

    # The network ACL deny that turns the brute force's attempts into REJECTs, and its removal two days on.
    acl = rid("acl", "main")
    entry = {"networkAclId": acl, "ruleNumber": 90, "egress": False, "ruleAction": "deny", "icmpTypeCode": {},
             "portRange": {"from": 22, "to": 22}, "aclProtocol": "6", "cidrBlock": f"{BRUTE_FORCE_IP}/32"}
    tr.event(plan.nacl_added_at, "CreateNetworkAclEntry", "guard", entry)
    removed = plan.nacl_added_at + 2 * 86400 + rng.randint(0, 3600)
    if removed < hi:
        tr.event(removed, "DeleteNetworkAclEntry", "guard", {"networkAclId": acl, "ruleNumber": 90,
                                                            "egress": False})
    return opened


def signal_story(tr: Trail, block: Block, plan: WeekPlan) -> None:
    """What the newer signals look for, once per week (issue 21): the scanner comes back with a leaked access key and
    switches a flow log off; a hurried engineer shortens a log group's retention; a network ACL is opened for RDP
    during a migration and closed again the next day."""
    rng = tr.rng
    lo, hi = block.since, block.until
    acl = rid("acl", "main")

    # Late in the week, after its sweeps, the scanning host calls the API with legacy-ops' key: who am I, what is
    # logged, then it deletes the sandbox VPC's flow log (which is why the sandbox interface is uncovered) and is
    # refused when it tries to stop the trail.
    t = pick(rng, hi - 40 * 3600, hi - 6 * 3600)
    tr.event(t, "GetCallerIdentity", "intruder", None, response=None, source="sts.amazonaws.com", read_only=True)
    tr.event(t + rng.randint(20, 60), "DescribeFlowLogs", "intruder", {"DescribeFlowLogsRequest": {}}, response=None,
             read_only=True)
    flow_log = rid("fl", "sandbox")
    ev = tr.event(t + rng.randint(90, 240), "DeleteFlowLogs", "intruder",
                  {"DeleteFlowLogsRequest": {"FlowLogId": {"content": flow_log, "tag": 1}}}, response=None)
    ev["responseElements"] = {"DeleteFlowLogsResponse": {"requestId": ev["requestID"], "unsuccessful": "",
                                                         "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/"}}
    trail_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/{TRAIL_NAME}"
    who = tr.identity(_ACTORS["intruder"], t)["arn"]
    tr.event(t + rng.randint(300, 600), "StopLogging", "intruder", {"name": trail_arn},
             source="cloudtrail.amazonaws.com",
             error=("AccessDenied", f"User: {who} is not authorized to perform: cloudtrail:StopLogging on resource: "
                                    f"{trail_arn} because no identity-based policy allows the cloudtrail:StopLogging "
                                    "action"))

    # The pipeline shortens the DR flow-log group's retention to three days to cut cost.
    tr.event(pick(rng, lo + 3600, hi - 3600), "PutRetentionPolicy", "ci",
             {"logGroupName": "/vpc/flow-logs/dr", "retentionInDays": 3}, response=None, source="logs.amazonaws.com")

    # A migration: RDP opened to the world on the main network ACL from the CLI, and closed the next day.
    opened = pick(rng, lo + 3600, hi - 30 * 3600)
    rdp = {"networkAclId": acl, "ruleNumber": 85, "egress": False, "ruleAction": "allow", "icmpTypeCode": {},
           "portRange": {"from": 3389, "to": 3389}, "aclProtocol": "6", "cidrBlock": "0.0.0.0/0"}
    tr.event(opened, "CreateNetworkAclEntry", "dave", rdp)
    tr.event(opened + rng.randint(20, 28) * 3600, "DeleteNetworkAclEntry", "dave",
             {"networkAclId": acl, "ruleNumber": 85, "egress": False})


_READ_ONLY = (
    ("DescribeInstances", {"instancesSet": {}, "filterSet": {}}),
    ("DescribeSecurityGroups", {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}),
    ("DescribeSecurityGroupRules", {"DescribeSecurityGroupRulesRequest": {"MaxResults": 1000}}),
    ("DescribeNetworkInterfaces", {"networkInterfaceIdSet": {}, "filterSet": {}}),
    ("DescribeVpcs", {"vpcSet": {}, "filterSet": {}}),
    ("DescribeSubnets", {"subnetSet": {}, "filterSet": {}}),
    ("DescribeFlowLogs", {"DescribeFlowLogsRequest": {}}),
    ("DescribeInstanceStatus", {"instancesSet": {}, "filterSet": {}, "includeAllInstances": False}),
)


def read_only_noise(tr: Trail, since: int, until: int) -> None:
    rng = tr.rng
    for hour_start in range(since, until, 3600):
        for _ in range(rng.randint(1, 4)):
            name, request = rng.choice(_READ_ONLY)
            who = rng.choice(("monitor", "config", "config", "alice", "ci"))
            region = DR_REGION if rng.random() < 0.1 else REGION
            tr.event(hour_start + rng.randrange(3600), name, who, request, response=None, region=region,
                     read_only=True)
        if rng.random() < 0.08:
            tr.event(hour_start + rng.randrange(3600), "GetCallerIdentity", "ci", None, response=None,
                     source="sts.amazonaws.com", read_only=True)


def write_trail_files(root: Path, tr: Trail, duplicate: dict[str, Any], rng: random.Random,
                      counts: dict[str, int]) -> tuple[list[Path], list[Path]]:
    buckets: dict[tuple[str, int], list[tuple[int, int, dict]]] = defaultdict(list)
    for t, region, ev in sorted(tr.events, key=lambda x: x[0]):
        delivered = t + rng.randint(120, 720)
        buckets[(region, delivered // 3600)].append((t, delivered, ev))
    alnum = string.ascii_letters + string.digits
    written: list[Path] = []

    def put(base: Path, region: str, entries: list[tuple[int, int, dict]]) -> Path:
        last = max(d for _, d, _ in entries)
        day = as_datetime(last)
        name = (f"{ACCOUNT_ID}_CloudTrail_{region}_{stamp_text(last)}_"
                f"{''.join(rng.choice(alnum) for _ in range(16))}.json.gz")
        body = json.dumps({"Records": [ev for _, _, ev in entries]}, separators=(",", ":"))
        return write_file(base / "CloudTrail" / region / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name,
                      gzip_bytes(body.encode()))

    account_base = root / "cloudtrail" / "AWSLogs" / ACCOUNT_ID
    for (region, _), entries in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        path = put(account_base, region, entries)
        written.append(path)
        counts["trail_events"] += len(entries)
        if any(ev is duplicate for _, _, ev in entries):
            # The same event delivered again by an organization trail to its own prefix.
            t, delivered, _ = next(x for x in entries if x[2] is duplicate)
            written.append(put(root / "cloudtrail" / "AWSLogs" / ORG_ID / ACCOUNT_ID, region,
                               [(t, delivered + 60, duplicate)]))
            counts["trail_duplicates"] += 1
    counts["trail_files"] = len(written)

    # One digest file (the hourly integrity record); it has no Records and every reader must skip it
    # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/
    # cloudtrail-log-file-validation-digest-file-structure.html).
    account_trail = (ACCOUNT_ID, "CloudTrail", REGION)
    last = [p for p in written if p.relative_to(root / "cloudtrail").parts[1:4] == account_trail][-3:]
    digest_end = max(_file_stamp(p) for p in last)
    day = as_datetime(digest_end)
    digest_name = f"{ACCOUNT_ID}_CloudTrail-Digest_{REGION}_{TRAIL_NAME}_{REGION}_{day:%Y%m%dT%H%M%SZ}.json.gz"
    digest_key = (f"AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/{REGION}/{day:%Y}/{day:%m}/{day:%d}/{digest_name}")
    digest = {
        "awsAccountId": ACCOUNT_ID, "digestStartTime": iso_text(digest_end - 3600), "digestEndTime": iso_text(digest_end),
        "digestS3Bucket": TRAIL_BUCKET, "digestS3Object": digest_key,
        "digestPublicKeyFingerprint": hashlib.md5(b"demo-key").hexdigest(),  # noqa: S324 - a fingerprint shape
        "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": iso_text(digest_end - 120),
        "oldestEventTime": iso_text(digest_end - 3600), "previousDigestS3Bucket": TRAIL_BUCKET,
        "previousDigestS3Object": None, "previousDigestHashValue": None, "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [{"s3Bucket": TRAIL_BUCKET, "s3Object": p.relative_to(root / "cloudtrail").as_posix(),
                      "hashValue": hashlib.sha256(p.read_bytes()).hexdigest(), "hashAlgorithm": "SHA-256",
                      "newestEventTime": iso_text(_file_stamp(p)), "oldestEventTime": iso_text(_file_stamp(p) - 3600)}
                     for p in last],
    }
    digest_path = write_file(root / "cloudtrail" / digest_key, gzip_bytes(json.dumps(digest, separators=(",", ":")).encode()))
    return written, [digest_path]


def _file_stamp(path: Path) -> int:
    stamp = path.name.split("_")[3]
    return int(datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc).timestamp())
