"""The EC2 inventory, as the AWS CLI prints describe-security-groups, describe-security-group-rules and
describe-network-interfaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from auditor.demo.world import ACCOUNT_ID, ENIS, GROUPS, Rule, iso_text, rid


def _ip_permissions(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """Rules folded into IpPermissions the way DescribeSecurityGroups returns them: one entry per
    protocol and port range, with every source of that range listed inside it."""
    perms: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in rules:
        key = (r.proto, r.from_port, r.to_port)
        if key not in perms:
            p: dict[str, Any] = {"IpProtocol": r.proto}
            if r.proto != "-1":
                p.update(FromPort=r.from_port, ToPort=r.to_port)
            p.update(UserIdGroupPairs=[], IpRanges=[], Ipv6Ranges=[], PrefixListIds=[])
            perms[key] = p
        p = perms[key]
        desc = {"Description": r.description} if r.description else {}
        if r.group:
            p["UserIdGroupPairs"].append({**desc, "UserId": ACCOUNT_ID, "GroupId": GROUPS[r.group].group_id})
        elif r.cidr4:
            p["IpRanges"].append({**desc, "CidrIp": r.cidr4})
        elif r.cidr6:
            p["Ipv6Ranges"].append({**desc, "CidrIpv6": r.cidr6})
        elif r.prefix_list:
            p["PrefixListIds"].append({**desc, "PrefixListId": r.prefix_list})
    return list(perms.values())


def inventory_documents(region: str, captured: int) -> dict[str, dict[str, Any]]:
    groups = [grp for grp in GROUPS.values() if grp.region == region]
    enis = [eni for eni in ENIS.values() if eni.subnet.region == region]
    captured_at = iso_text(captured)
    sgs, rules = [], []
    for grp in groups:
        vpc_id = rid("vpc", grp.vpc)
        entry: dict[str, Any] = {"GroupId": grp.group_id,
                                 "IpPermissionsEgress": _ip_permissions(r for r in grp.rules if r.egress)}
        if grp.name != "default":
            entry["Tags"] = [{"Key": "Name", "Value": grp.name}]
        entry.update({"VpcId": vpc_id,
                      "SecurityGroupArn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{grp.group_id}",
                      "OwnerId": ACCOUNT_ID, "GroupName": grp.name, "Description": grp.description,
                      "IpPermissions": _ip_permissions(r for r in grp.rules if not r.egress)})
        sgs.append(entry)
        for r in grp.rules:
            rule: dict[str, Any] = {"SecurityGroupRuleId": r.rule_id, "GroupId": grp.group_id,
                                    "GroupOwnerId": ACCOUNT_ID, "IsEgress": r.egress, "IpProtocol": r.proto,
                                    "FromPort": r.from_port, "ToPort": r.to_port}
            if r.group:
                rule["ReferencedGroupInfo"] = {"GroupId": GROUPS[r.group].group_id, "UserId": ACCOUNT_ID}
            elif r.cidr4:
                rule["CidrIpv4"] = r.cidr4
            elif r.cidr6:
                rule["CidrIpv6"] = r.cidr6
            elif r.prefix_list:
                rule["PrefixListId"] = r.prefix_list
            if r.description:
                rule["Description"] = r.description
            rule["Tags"] = []
            rule["SecurityGroupRuleArn"] = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group-rule/{r.rule_id}"
            rules.append(rule)

    nics = []
    for i, eni in enumerate(enis):
        dns_suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        pub_suffix = "compute-1.amazonaws.com" if region == "us-east-1" else f"{region}.compute.amazonaws.com"

        def private_dns(ip: str, dns_suffix: str = dns_suffix) -> str:
            return f"ip-{ip.replace('.', '-')}.{dns_suffix}"

        association = None
        if eni.public_ip:
            owner = "amazon-elb" if eni.requester_id == "amazon-elb" else ACCOUNT_ID
            association = {"IpOwnerId": owner, "PublicDnsName": f"ec2-{eni.public_ip.replace('.', '-')}.{pub_suffix}",
                           "PublicIp": eni.public_ip}
            if owner == ACCOUNT_ID:
                association = {"AllocationId": rid("eipalloc", eni.key), "AssociationId": rid("eipassoc", eni.key),
                               **association}
        nic: dict[str, Any] = {}
        if association:
            nic["Association"] = association
        attach_time = iso_text(captured - (120 + 11 * i) * 86400 - 3600 * (i + 3))
        if eni.instance_id:
            nic["Attachment"] = {"AttachTime": attach_time.replace("Z", "+00:00"),
                                 "AttachmentId": rid("eni-attach", eni.key), "DeleteOnTermination": True,
                                 "DeviceIndex": 0, "NetworkCardIndex": 0, "InstanceId": eni.instance_id,
                                 "InstanceOwnerId": ACCOUNT_ID, "Status": "attached"}
        else:
            nic["Attachment"] = {"AttachTime": attach_time.replace("Z", "+00:00"),
                                 "AttachmentId": rid("ela-attach", eni.key), "DeleteOnTermination": False,
                                 "DeviceIndex": 1, "NetworkCardIndex": 0,
                                 "InstanceOwnerId": "amazon-elb" if eni.requester_id == "amazon-elb" else "amazon-aws",
                                 "Status": "attached"}
        mac = hashlib.sha256(f"mac:{eni.key}".encode()).hexdigest()
        ips = [{**({"Association": association} if association else {}), "Primary": True,
                "PrivateDnsName": private_dns(eni.ip), "PrivateIpAddress": eni.ip}]
        ips += [{"Primary": False, "PrivateDnsName": private_dns(ip), "PrivateIpAddress": ip}
                for ip in eni.secondary_ips]
        nic.update({
            "AvailabilityZone": eni.subnet.az, "Description": eni.description,
            "Groups": [{"GroupId": GROUPS[k].group_id, "GroupName": GROUPS[k].name} for k in eni.groups],
            "InterfaceType": eni.interface_type,
            "Ipv6Addresses": [{"Ipv6Address": eni.ipv6, "IsPrimaryIpv6": False}] if eni.ipv6 else [],
            "MacAddress": "0e:" + ":".join(mac[j:j + 2] for j in range(0, 10, 2)),
            "NetworkInterfaceId": eni.eni_id, "OwnerId": ACCOUNT_ID, "PrivateDnsName": private_dns(eni.ip),
            "PrivateIpAddress": eni.ip, "PrivateIpAddresses": ips, "Ipv4Prefixes": [], "Ipv6Prefixes": []})
        if eni.requester_id:
            nic["RequesterId"] = eni.requester_id
        nic.update({"RequesterManaged": eni.requester_managed,
                    "SourceDestCheck": eni.interface_type != "nat_gateway", "Status": "in-use",
                    "SubnetId": eni.subnet.subnet_id,
                    # An instance's interface carries the instance's Name tag, as launch templates tag both.
                    "TagSet": [{"Key": "Name", "Value": eni.key}] if eni.instance else [],
                    "VpcId": eni.subnet.vpc_id})
        nics.append(nic)
    return {"describe-security-groups.json": {"SecurityGroups": sgs, "captured_at": captured_at},
            "describe-security-group-rules.json": {"SecurityGroupRules": rules, "captured_at": captured_at},
            "describe-network-interfaces.json": {"NetworkInterfaces": nics, "captured_at": captured_at}}
