"""Hand-made CloudTrail events and S3-layout log files for check tests."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support.flowdata import ACCOUNT, REGION

_NS = uuid.UUID("6f1c0a3e-0000-4000-8000-000000000000")


def event(name: str, request: Mapping[str, Any] | None = None, response: Mapping[str, Any] | None = None, *,
          time: str = "2026-11-10T12:00:00Z", error: str | None = None, user_agent: str = "aws-cli/2.15.0",
          arn: str | None = "arn:aws:iam::111122223333:user/alice", source: str = "ec2.amazonaws.com",
          event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """One CloudTrail record as CloudTrail writes it (eventVersion 1.09)."""
    identity: dict[str, Any] = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": ACCOUNT}
    if arn:
        identity["arn"] = arn
    e = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": time, "eventSource": source,
         "eventName": name, "awsRegion": REGION, "sourceIPAddress": "198.51.100.44", "userAgent": user_agent,
         "requestParameters": request, "responseElements": response,
         "requestID": str(uuid.uuid5(_NS, f"req-{name}-{time}")),
         "eventID": event_id or str(uuid.uuid5(_NS, f"{name}-{time}-{json.dumps(request, sort_keys=True)}")),
         "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
         "recipientAccountId": ACCOUNT, "eventCategory": "Management"}
    if error:
        e["errorCode"] = error
        e["errorMessage"] = "You are not authorized to perform this operation."
    e.update(extra)
    return e


def ingress(group: str, proto: str | int, lo: int | str | None, hi: int | str | None, cidr: str) -> dict[str, Any]:
    """requestParameters of the modern AuthorizeSecurityGroupIngress/Egress shape."""
    perm: dict[str, Any] = {"ipProtocol": str(proto), "groups": {}, "ipv6Ranges": {}, "prefixListIds": {},
                            "ipRanges": {}}
    if lo is not None:
        perm["fromPort"], perm["toPort"] = lo, hi
    if ":" in cidr:
        perm["ipv6Ranges"] = {"items": [{"cidrIpv6": cidr}]}
    else:
        perm["ipRanges"] = {"items": [{"cidrIp": cidr}]}
    return {"groupId": group, "ipPermissions": {"items": [perm]}}


def write_trail(root: Path, events: Iterable[Mapping[str, Any]], *, day: str = "2026/11/10", gz: bool = True) -> Path:
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION / day
    folder.mkdir(parents=True, exist_ok=True)
    n = len(list(folder.iterdir()))
    name = f"{ACCOUNT}_CloudTrail_{REGION}_{day.replace('/', '')}T1200Z_{n:016x}.json"
    data = json.dumps({"Records": list(events)}).encode()
    path = folder / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def authorized(group, port, cidr, rid, time):
    """An AuthorizeSecurityGroupIngress whose response names the rule it created, as CloudTrail records it."""
    resp = {"_return": True, "securityGroupRuleSet": {"items": [
        {"groupId": group, "groupOwnerId": ACCOUNT, "securityGroupRuleId": rid, "isEgress": False,
         "ipProtocol": "tcp", "fromPort": port, "toPort": port, "cidrIpv4": cidr}]}}
    return event("AuthorizeSecurityGroupIngress", ingress(group, "tcp", port, port, cidr), resp, time=time)


def revoked(group, port, cidr, time):
    return event("RevokeSecurityGroupIngress", ingress(group, "tcp", port, port, cidr), {"_return": True}, time=time)


def group_set(eni, groups, time):
    return event("ModifyNetworkInterfaceAttribute",
                 {"networkInterfaceId": eni, "groupSet": {"items": [{"groupId": g} for g in groups]}}, time=time)


def modified(group, rid, port, cidr, time):
    return event("ModifySecurityGroupRules", {"ModifySecurityGroupRulesRequest": {
        "GroupId": group, "SecurityGroupRule": {"SecurityGroupRuleId": rid, "SecurityGroupRule": {
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIpv4": cidr}}}}, {"_return": True}, time=time)
