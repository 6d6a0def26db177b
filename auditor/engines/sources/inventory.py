"""Loading an EC2 inventory snapshot (security groups, their rules, network interfaces) into DuckDB.

Input: the JSON that the AWS CLI prints for

- ``aws ec2 describe-security-groups`` → ``describe-security-groups.json`` (top-level ``SecurityGroups``),
- ``aws ec2 describe-security-group-rules`` → ``describe-security-group-rules.json`` (``SecurityGroupRules``),
- ``aws ec2 describe-network-interfaces`` → ``describe-network-interfaces.json`` (``NetworkInterfaces``),
- optionally ``aws ec2 describe-network-acls`` → ``describe-network-acls.json`` (``NetworkAcls``): no warning
  when it is absent,

each optionally gzipped (``.json.gz``). The three files sit either together in one folder, or in
``<account>/<region>/`` folders (a 12-digit account ID, then a region name) at any depth under the root,
one folder per account and region. Every folder holding at least one of the files is read.

Where ``account_id`` and ``region`` come from: the ``<account>/<region>/`` folders when the path has them.
Otherwise, per row: the account from ``OwnerId`` (``GroupOwnerId`` for rules), the region from the
interface's ``AvailabilityZone`` (``us-west-2a`` → ``us-west-2``; Local Zones such as
``us-west-2-lax-1a`` → ``us-west-2``), or from the ``SecurityGroupArn``/``SecurityGroupRuleArn`` when the
CLI printed one. Security groups carry no zone: without a path or an ARN they take the region of the
folder's interfaces when those all agree, and stay NULL (with a warning) when they do not.

``captured_at``: the top-level ``"captured_at"`` ISO 8601 string our snapshot writer stores in each file,
else the file's modification time. The snapshot's ``captured_at`` is the oldest of its readable files'. A missing
file is not an error: its tables get no rows from that folder, and the snapshot carries a warning. Loading
appends to the tables (created when missing). Each file's :class:`FileQuality` counts the resources it
holds in ``records`` and, in ``malformed``, list items that are not objects or lack their ID (or 1 for a
file that is not JSON or lacks its top-level key).

Tables and columns
------------------

``sg_groups`` — one row per security group (``describe-security-groups``):

- ``account_id`` VARCHAR: the account the group was read from (see above).
- ``region`` VARCHAR: the region the group was read from (see above).
- ``group_id`` VARCHAR: ``GroupId``, e.g. ``sg-0123456789abcdef0``.
- ``group_name`` VARCHAR: ``GroupName``.
- ``vpc_id`` VARCHAR: ``VpcId``.
- ``description`` VARCHAR: ``Description``.
- ``owner_id`` VARCHAR: ``OwnerId``, the account that owns the group.

``sg_rules`` — one row per rule and per peer. From ``describe-security-group-rules`` when the folder has it
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SecurityGroupRule.html). Otherwise derived
from the groups' ``IpPermissions``/``IpPermissionsEgress``
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html): one row per IPv4 range,
IPv6 range, prefix list and group pair, with a synthetic ``rule_id`` (and a warning saying so).

- ``account_id`` VARCHAR, ``region`` VARCHAR: as for ``sg_groups``.
- ``rule_id`` VARCHAR: ``SecurityGroupRuleId`` (``sgr-…``), or when derived
  ``<group>:<ingress|egress>:<protocol>:<from>-<to>:<peer>`` (``all`` in place of the ports for protocol
  -1), e.g. ``sg-123:ingress:6:22-22:0.0.0.0/0``. The peer of a group pair is ``<account>/<group>`` when
  the referenced group belongs to another account.
- ``group_id`` VARCHAR: the group the rule belongs to.
- ``group_owner_id`` VARCHAR: the account that owns that group.
- ``is_egress`` BOOLEAN: true for an outbound rule.
- ``protocol`` INTEGER: IANA protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6), -1 for all protocols;
  NULL (with a warning) when ``IpProtocol`` names no protocol.
- ``from_port`` INTEGER, ``to_port`` INTEGER: the port range for TCP and UDP; for ICMP and ICMPv6 the ICMP
  type and code. -1 means all (all ports, types or codes), and is also what a rule without ports gets
  (protocol -1, or protocols whose rules apply to every port). NULL when the file holds no number there.
- ``cidr_ipv4`` VARCHAR: the IPv4 peer range, or NULL.
- ``cidr_ipv6`` VARCHAR: the IPv6 peer range, or NULL.
- ``prefix_list_id`` VARCHAR: the peer prefix list (``pl-…``), or NULL.
- ``referenced_group_id`` VARCHAR: the peer security group, or NULL.
- ``referenced_group_owner_id`` VARCHAR: the account that owns the peer group, or NULL.
- ``referenced_vpc_id`` VARCHAR: the peer group's VPC when AWS reports it (peered VPCs), or NULL.
- ``description`` VARCHAR: the rule's description (the peer entry's, for derived rules).

``enis`` — one row per elastic network interface (``describe-network-interfaces``,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NetworkInterface.html):

- ``account_id`` VARCHAR, ``region`` VARCHAR: as above (``OwnerId``, ``AvailabilityZone`` without a path).
- ``interface_id`` VARCHAR: ``NetworkInterfaceId`` (``eni-…``), as flow logs write it.
- ``vpc_id`` VARCHAR, ``subnet_id`` VARCHAR: ``VpcId``, ``SubnetId``.
- ``status`` VARCHAR: ``Status`` (``in-use``, ``available``, …).
- ``interface_type`` VARCHAR: ``InterfaceType`` (``interface``, ``nat_gateway``, ``vpc_endpoint``,
  ``lambda``, ``branch``, …); NULL in old recordings that predate the field.
- ``description`` VARCHAR: ``Description``.
- ``requester_managed`` BOOLEAN: ``RequesterManaged``, true for interfaces an AWS service created.
- ``instance_id`` VARCHAR: ``Attachment.InstanceId``, NULL when not attached to an instance.
- ``owner_id`` VARCHAR: ``OwnerId``.
- ``name`` VARCHAR: the value of its ``Name`` tag (``TagSet``), NULL without one: finding titles name the
  interface by it.

``eni_groups`` — one row per interface and security group (``Groups[].GroupId``):

- ``account_id`` VARCHAR, ``region`` VARCHAR, ``interface_id`` VARCHAR: as in ``enis``.
- ``group_id`` VARCHAR: a security group attached to the interface.

``eni_addresses`` — one row per address of an interface:

- ``account_id`` VARCHAR, ``region`` VARCHAR, ``interface_id`` VARCHAR: as in ``enis``.
- ``address`` VARCHAR: the IP address.
- ``kind`` VARCHAR: ``private_ipv4`` (each ``PrivateIpAddresses[].PrivateIpAddress``), ``ipv6``
  (each ``Ipv6Addresses[].Ipv6Address``) or ``public_ipv4`` (``Association.PublicIp``, and the public IP
  associated with each secondary private address, ``PrivateIpAddresses[].Association.PublicIp``).
  An address appears once per interface and kind.

``nacl_entries`` — one row per entry of a network ACL (``describe-network-acls``, optional), read by
``nacl_changes`` to name the entry a Delete or Replace call removed:

- ``account_id`` VARCHAR, ``region`` VARCHAR: as above (``OwnerId``, the folder's region).
- ``network_acl_id`` VARCHAR: ``NetworkAclId`` (``acl-…``).
- ``vpc_id`` VARCHAR: ``VpcId``.
- ``rule_number`` INTEGER: ``RuleNumber``, the order in which entries are evaluated.
- ``egress`` BOOLEAN: true for an outbound entry.
- ``rule_action`` VARCHAR: ``allow`` or ``deny``.
- ``protocol`` INTEGER: IANA number, -1 for all protocols.
- ``from_port`` INTEGER, ``to_port`` INTEGER: ``PortRange`` for TCP and UDP entries, NULL otherwise.
- ``cidr`` VARCHAR: ``CidrBlock`` or ``Ipv6CidrBlock``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from auditor.engines.sources.files import describe
from auditor.engines.sources.protocols import ALL_PROTOCOLS, protocol_number
from auditor.errors import InputError
from auditor.models import FileQuality, utc
from auditor.tables import INVENTORY_TABLES, ddl

SECURITY_GROUPS = "describe-security-groups"
SECURITY_GROUP_RULES = "describe-security-group-rules"
NETWORK_INTERFACES = "describe-network-interfaces"
NETWORK_ACLS = "describe-network-acls"  # optional: only nacl_changes reads it
_TOP_KEY = {SECURITY_GROUPS: "SecurityGroups", SECURITY_GROUP_RULES: "SecurityGroupRules",
            NETWORK_INTERFACES: "NetworkInterfaces", NETWORK_ACLS: "NetworkAcls"}
_ID_KEY = {SECURITY_GROUPS: "GroupId", SECURITY_GROUP_RULES: "GroupId", NETWORK_INTERFACES: "NetworkInterfaceId",
           NETWORK_ACLS: "NetworkAclId"}
_FILE_NAME = re.compile(r"^(" + "|".join(map(re.escape, _TOP_KEY)) + r")\.json(?:\.gz)?$")

_ARROW_TYPES = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "BOOLEAN": pa.bool_()}

# The region at the start of an Availability Zone name: us-west-2a, us-west-2-lax-1a, us-gov-west-1b
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-regions-availability-zones.html).
_AZ_REGION = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)")


@dataclass(frozen=True)
class InventorySnapshot:
    """What one inventory load read: when it was captured, its files, accounts and regions."""

    captured_at: datetime | None
    files: tuple[FileQuality, ...]
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    warnings: tuple[str, ...]


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the inventory tables (see the module docstring) unless they exist."""
    for table, columns in INVENTORY_TABLES.items():
        con.execute(ddl(table, columns))


def load_inventory(con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str]) -> InventorySnapshot:
    """Append the inventory files found under ``root`` to the inventory tables.

    Raises :class:`InputError` when ``root`` is not a directory. Missing or unreadable files are
    warnings in the returned snapshot, not errors.
    """
    rootp = Path(root)
    if not rootp.is_dir():
        raise InputError(f"{rootp}: no such inventory directory")
    create_tables(con)
    folders, warnings = _find_folders(rootp)
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in INVENTORY_TABLES}
    qualities: list[FileQuality] = []
    captured: list[datetime] = []
    for folder in sorted(folders) or [rootp]:
        loaded = _load_folder(rootp, folder, folders.get(folder, {}))
        for table, table_rows in loaded.rows.items():
            rows[table].extend(table_rows)
        qualities.extend(loaded.files)
        captured.extend(loaded.captured_at)
        warnings.extend(loaded.warnings)
    for table, table_rows in rows.items():
        if table_rows:
            schema = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in INVENTORY_TABLES[table]])
            con.from_arrow(pa.Table.from_pylist(table_rows, schema=schema)).insert_into(table)
    all_rows = [r for table_rows in rows.values() for r in table_rows]
    return InventorySnapshot(
        captured_at=min(captured) if captured else None,
        files=tuple(qualities),
        accounts=tuple(sorted({r["account_id"] for r in all_rows if r["account_id"]})),
        regions=tuple(sorted({r["region"] for r in all_rows if r["region"]})),
        warnings=tuple(warnings),
    )


# --- finding and reading files ---------------------------------------------------------------------

def _find_folders(root: Path) -> tuple[dict[Path, dict[str, Path]], list[str]]:
    """Folders under ``root`` holding inventory files, with the file of each kind they hold."""
    folders: dict[Path, dict[str, Path]] = {}
    warnings: list[str] = []

    def unlisted(e: OSError) -> None:
        warnings.append(f"{_show(root, Path(e.filename or root))}: cannot list the folder ({e.strerror or e}); "
                        "the inventory it holds is missing")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):  # "x.json" sorts before "x.json.gz": the plain file wins
            m = _FILE_NAME.match(name)
            if m is None:
                continue
            found = folders.setdefault(Path(dirpath), {})
            if m.group(1) in found:
                warnings.append(f"{_show(root, Path(dirpath) / name)}: ignored, "
                                f"{found[m.group(1)].name} is read instead")
                continue
            found[m.group(1)] = Path(dirpath) / name
    return folders, warnings


@dataclass
class _Document:
    items: list[dict[str, Any]]
    quality: FileQuality
    captured_at: datetime | None  # None when the file could not be read as that kind of document
    warnings: list[str]

    @property
    def readable(self) -> bool:
        return self.captured_at is not None


def _read_document(root: Path, path: Path, kind: str) -> _Document:
    shown = _show(root, path)
    try:
        data = path.read_bytes()
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        doc = json.loads(data)
    except (OSError, EOFError, zlib.error, ValueError, RecursionError) as e:  # RecursionError: [[[[... too deep
        return _Document([], FileQuality(path=str(path), malformed=1), None, [f"{shown}: not readable JSON ({e})"])
    key = _TOP_KEY[kind]
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        return _Document([], FileQuality(path=str(path), malformed=1), None,
                         [f"{shown}: no top-level {key} list; is this the output of aws ec2 {kind}?"])
    warnings: list[str] = []
    captured_at = mtime
    stamp = doc.get("captured_at")
    if stamp is not None:
        parsed = _parse_iso(stamp)
        if parsed is None:
            warnings.append(f"{shown}: captured_at {stamp!r} is not an ISO 8601 time; using the file's mtime")
        else:
            captured_at = parsed
    id_key = _ID_KEY[kind]
    items = [item for item in doc[key] if isinstance(item, dict) and isinstance(item.get(id_key), str)]
    malformed = len(doc[key]) - len(items)
    if malformed:
        warnings.append(f"{shown}: {malformed} {key} item(s) skipped: not an object or no {id_key}")
    return _Document(items, FileQuality(path=str(path), records=len(items), malformed=malformed), captured_at,
                     warnings)


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # fromisoformat() reads "Z" only from Python 3.11
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _show(root: Path, path: Path) -> str:
    try:
        shown = path.relative_to(root).as_posix()
    except ValueError:
        shown = path.as_posix()
    return shown if shown != "." else root.as_posix()


# --- one folder ------------------------------------------------------------------------------------

@dataclass
class _Loaded:
    rows: dict[str, list[dict[str, Any]]]
    files: list[FileQuality]
    captured_at: list[datetime]
    warnings: list[str]


def _load_folder(root: Path, folder: Path, found: Mapping[str, Path]) -> _Loaded:
    out = _Loaded({table: [] for table in INVENTORY_TABLES}, [], [], [])
    shown_folder = _show(root, folder)
    path_account, path_region = _path_account_region(found)
    docs: dict[str, _Document] = {}
    for kind in (NETWORK_INTERFACES, SECURITY_GROUPS, SECURITY_GROUP_RULES, NETWORK_ACLS):
        if kind not in found:
            continue
        doc = _read_document(root, found[kind], kind)
        docs[kind] = doc
        out.files.append(doc.quality)
        out.warnings.extend(doc.warnings)
        if doc.captured_at is not None:
            out.captured_at.append(doc.captured_at)

    enis = docs[NETWORK_INTERFACES].items if NETWORK_INTERFACES in docs else []
    groups = docs[SECURITY_GROUPS].items if SECURITY_GROUPS in docs else []
    for eni in enis:
        _add_interface(out.rows, eni, path_account, path_region)
    eni_regions = {r["region"] for r in out.rows["enis"] if r["region"]}
    folder_region = path_region or (eni_regions.pop() if len(eni_regions) == 1 else None)

    for sg in groups:
        arn_region, arn_account = _arn_region_account(sg.get("SecurityGroupArn"))
        out.rows["sg_groups"].append({
            "account_id": path_account or _str(sg.get("OwnerId")) or arn_account,
            "region": path_region or arn_region or folder_region,
            "group_id": sg["GroupId"], "group_name": _str(sg.get("GroupName")), "vpc_id": _str(sg.get("VpcId")),
            "description": _str(sg.get("Description")), "owner_id": _str(sg.get("OwnerId")),
        })

    unknown_protocols: list[str] = []
    rules_doc = docs.get(SECURITY_GROUP_RULES)
    if rules_doc is not None and rules_doc.readable:
        group_region = {g["group_id"]: g["region"] for g in out.rows["sg_groups"]}
        for rule in rules_doc.items:
            out.rows["sg_rules"].append(
                _rule_from_api(rule, path_account, path_region, group_region, folder_region, unknown_protocols))
    elif SECURITY_GROUPS in docs:
        for sg, group_row in zip(groups, out.rows["sg_groups"]):
            out.rows["sg_rules"].extend(_rules_from_permissions(sg, group_row, unknown_protocols))
        out.warnings.append(f"{shown_folder}: no readable {SECURITY_GROUP_RULES}.json; sg_rules were derived "
                            f"from the groups' IpPermissions, with synthetic rule_ids")

    for acl in docs[NETWORK_ACLS].items if NETWORK_ACLS in docs else []:
        out.rows["nacl_entries"].extend(_nacl_entries(acl, path_account, path_region or folder_region,
                                                      unknown_protocols))

    for kind, tables in ((SECURITY_GROUPS, "sg_groups"), (SECURITY_GROUP_RULES, "sg_rules"),
                         (NETWORK_INTERFACES, "enis, eni_groups and eni_addresses")):
        if kind not in found and not (kind == SECURITY_GROUP_RULES and SECURITY_GROUPS in docs):
            out.warnings.append(f"{shown_folder}: no {kind}.json; {tables} have no rows from this folder")
    if unknown_protocols:
        shown = ", ".join(sorted(set(unknown_protocols))[:5])
        out.warnings.append(f"{shown_folder}: {len(unknown_protocols)} rule(s) with an IpProtocol that names no "
                            f"protocol ({shown}); their protocol is NULL")
    no_region = sum(1 for table_rows in out.rows.values() for r in table_rows if r["region"] is None)
    if no_region:
        out.warnings.append(f"{shown_folder}: the region of {no_region} row(s) is unknown; put the files under "
                            f"<account>/<region>/ folders")
    return out


def _path_account_region(found: Mapping[str, Path]) -> tuple[str | None, str | None]:
    for path in found.values():
        info = describe(path)
        if info is not None:
            return info.account_id, info.region
    return None, None


def _name_tag(tags: Any) -> str | None:
    for tag in _objs(tags):
        if tag.get("Key") == "Name":
            return _str(tag.get("Value"))
    return None


def _add_interface(rows: dict[str, list[dict[str, Any]]], eni: dict[str, Any], path_account: str | None,
                   path_region: str | None) -> None:
    where = {
        "account_id": path_account or _str(eni.get("OwnerId")),
        "region": path_region or _az_region(eni.get("AvailabilityZone")),
        "interface_id": eni["NetworkInterfaceId"],
    }
    attachment = _obj(eni.get("Attachment"))
    rows["enis"].append({
        **where, "vpc_id": _str(eni.get("VpcId")), "subnet_id": _str(eni.get("SubnetId")),
        "status": _str(eni.get("Status")), "interface_type": _str(eni.get("InterfaceType")),
        "description": _str(eni.get("Description")), "requester_managed": _bool(eni.get("RequesterManaged")),
        "instance_id": _str(attachment.get("InstanceId")), "owner_id": _str(eni.get("OwnerId")),
        "name": _name_tag(eni.get("TagSet") or eni.get("Tags")),
    })
    for group in _objs(eni.get("Groups")):
        if _str(group.get("GroupId")):
            rows["eni_groups"].append({**where, "group_id": group["GroupId"]})
    addresses: list[tuple[str | None, str]] = []
    for private in _objs(eni.get("PrivateIpAddresses")):
        addresses.append((_str(private.get("PrivateIpAddress")), "private_ipv4"))
    addresses.append((_str(eni.get("PrivateIpAddress")), "private_ipv4"))
    for ipv6 in _objs(eni.get("Ipv6Addresses")):
        addresses.append((_str(ipv6.get("Ipv6Address")), "ipv6"))
    addresses.append((_str(_obj(eni.get("Association")).get("PublicIp")), "public_ipv4"))
    for private in _objs(eni.get("PrivateIpAddresses")):
        addresses.append((_str(_obj(private.get("Association")).get("PublicIp")), "public_ipv4"))
    seen: set[tuple[str, str]] = set()
    for address, kind in addresses:
        if address and (address, kind) not in seen:
            seen.add((address, kind))
            rows["eni_addresses"].append({**where, "address": address, "kind": kind})


def _rule_from_api(rule: dict[str, Any], path_account: str | None, path_region: str | None,
                   group_region: Mapping[str, str | None], folder_region: str | None,
                   unknown_protocols: list[str]) -> dict[str, Any]:
    arn_region, arn_account = _arn_region_account(rule.get("SecurityGroupRuleArn"))
    referenced = _obj(rule.get("ReferencedGroupInfo"))
    protocol = _protocol(rule.get("IpProtocol"), unknown_protocols)
    return {
        "account_id": path_account or _str(rule.get("GroupOwnerId")) or arn_account,
        "region": path_region or arn_region or group_region.get(rule["GroupId"]) or folder_region,
        "rule_id": _str(rule.get("SecurityGroupRuleId")), "group_id": rule["GroupId"],
        "group_owner_id": _str(rule.get("GroupOwnerId")), "is_egress": _bool(rule.get("IsEgress")),
        "protocol": protocol, "from_port": _port(rule.get("FromPort")), "to_port": _port(rule.get("ToPort")),
        "cidr_ipv4": _str(rule.get("CidrIpv4")), "cidr_ipv6": _str(rule.get("CidrIpv6")),
        "prefix_list_id": _str(rule.get("PrefixListId")), "referenced_group_id": _str(referenced.get("GroupId")),
        "referenced_group_owner_id": _str(referenced.get("UserId")),
        "referenced_vpc_id": _str(referenced.get("VpcId")), "description": _str(rule.get("Description")),
    }


_PEERS = (  # (list key in IpPermission, key of the peer in each entry, sg_rules column)
    ("IpRanges", "CidrIp", "cidr_ipv4"),
    ("Ipv6Ranges", "CidrIpv6", "cidr_ipv6"),
    ("PrefixListIds", "PrefixListId", "prefix_list_id"),
    ("UserIdGroupPairs", "GroupId", "referenced_group_id"),
)


def _rules_from_permissions(sg: dict[str, Any], group: Mapping[str, Any],
                            unknown_protocols: list[str]) -> Iterable[dict[str, Any]]:
    for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
        for permission in _objs(sg.get(key)):
            raw_protocol = permission.get("IpProtocol")
            protocol = _protocol(raw_protocol, unknown_protocols)
            from_port, to_port = _port(permission.get("FromPort")), _port(permission.get("ToPort"))
            ports = "all" if protocol == ALL_PROTOCOLS else f"{from_port}-{to_port}"
            for list_key, peer_key, column in _PEERS:
                for entry in _objs(permission.get(list_key)):
                    peer = _str(entry.get(peer_key))
                    if not peer:
                        continue
                    row = {
                        "account_id": group["account_id"], "region": group["region"], "rule_id": None,
                        "group_id": sg["GroupId"], "group_owner_id": _str(sg.get("OwnerId")),
                        "is_egress": direction == "egress", "protocol": protocol, "from_port": from_port,
                        "to_port": to_port, "cidr_ipv4": None, "cidr_ipv6": None, "prefix_list_id": None,
                        "referenced_group_id": None, "referenced_group_owner_id": None, "referenced_vpc_id": None,
                        "description": _str(entry.get("Description")), column: peer,
                    }
                    if list_key == "UserIdGroupPairs":
                        owner = _str(entry.get("UserId"))
                        row["referenced_group_owner_id"] = owner
                        row["referenced_vpc_id"] = _str(entry.get("VpcId"))
                        if owner and owner != row["group_owner_id"]:
                            peer = f"{owner}/{peer}"
                    shown_protocol = protocol if protocol is not None else _str(raw_protocol)
                    row["rule_id"] = f"{sg['GroupId']}:{direction}:{shown_protocol}:{ports}:{peer}"
                    yield row


def _nacl_entries(acl: dict[str, Any], path_account: str | None, region: str | None,
                  unknown: list[str]) -> Iterable[dict[str, Any]]:
    """One row per entry of a network ACL (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NetworkAclEntry.html).
    Ports apply to TCP and UDP only; an entry of another protocol gets NULL ports."""
    account = path_account or _str(acl.get("OwnerId"))
    for entry in _objs(acl.get("Entries")):
        protocol = _protocol(entry.get("Protocol"), unknown)
        ports = _obj(entry.get("PortRange"))
        tcp_udp = protocol in (6, 17)
        yield {"account_id": account, "region": region, "network_acl_id": acl["NetworkAclId"],
               "vpc_id": _str(acl.get("VpcId")), "rule_number": _port(entry.get("RuleNumber")),
               "egress": _bool(entry.get("Egress")), "rule_action": _str(entry.get("RuleAction")),
               "protocol": protocol, "from_port": _port(ports.get("From")) if tcp_udp and ports else None,
               "to_port": _port(ports.get("To")) if tcp_udp and ports else None,
               "cidr": _str(entry.get("CidrBlock") or entry.get("Ipv6CidrBlock"))}


# --- value coercion ----------------------------------------------------------------------------------

def _str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _port(value: Any) -> int | None:
    """A port, ICMP type or ICMP code. Absent means all (-1): AWS omits the ports of rules that cover
    every port. A value that is no port at all is NULL rather than a guess."""
    if value is None:
        return ALL_PROTOCOLS
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and not isinstance(value, bool) and -1 <= value <= 65535:
        return value
    return None


def _protocol(value: Any, unknown: list[str]) -> int | None:
    number = protocol_number(value)
    if number is None:
        unknown.append(repr(value))
    return number


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _az_region(zone: Any) -> str | None:
    m = _AZ_REGION.match(zone) if isinstance(zone, str) else None
    return m.group(1) if m else None


def _arn_region_account(arn: Any) -> tuple[str | None, str | None]:
    """Region and account of ``arn:partition:service:region:account:resource``."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) == 6 and parts[0] == "arn":
        return parts[3] or None, parts[4] or None
    return None, None
