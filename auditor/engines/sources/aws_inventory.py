"""The live EC2 inventory: paginated describe calls, loaded into the same tables the file reader fills.

For one account and region the EC2 API is asked for what the AWS CLI would print for

- ``describe-security-groups``, ``describe-security-group-rules``, ``describe-network-interfaces``,
  ``describe-network-acls`` (the inventory tables, see :mod:`auditor.engines.sources.inventory`);
- ``describe-flow-logs``, ``describe-subnets``, ``describe-vpcs`` (flow-log coverage).

The documents are written as a snapshot, ``<dir>/<account>/<region>/describe-*.json``, each with a top-level
``captured_at``, and the inventory is loaded from it by the very reader that loads snapshots from files. So a
live run and a run over ``auditor inventory snapshot --out DIR`` fill the tables the same way.

Coverage (from ec2:DescribeFlowLogs, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_FlowLog.html):
a flow log is attached to a VPC, a subnet or an interface and covers every interface inside it. The data-quality
section lists the interfaces, subnets and VPCs that no active flow log covers, the logs that record only
ACCEPT or only REJECT traffic, the logs whose delivery failed, and each log's format.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from auditor.aws import AwsSessions, Target, describe_error
from auditor.clock import utcnow
from auditor.config import LoadedConfig
from auditor.engines.sources.inventory import (
    NETWORK_ACLS,
    NETWORK_INTERFACES,
    SECURITY_GROUP_RULES,
    SECURITY_GROUPS,
    InventorySnapshot,
    load_inventory,
)
from auditor.errors import AuditorError, ConfigError, EngineError
from auditor.logformat import DEFAULT_FORMAT
from auditor.models import DataQuality, iso_z

FLOW_LOGS = "describe-flow-logs"
SUBNETS = "describe-subnets"
VPCS = "describe-vpcs"

# snapshot file stem -> (EC2 operation, top-level key of the CLI output)
CALLS: Mapping[str, tuple[str, str]] = {
    SECURITY_GROUPS: ("describe_security_groups", "SecurityGroups"),
    SECURITY_GROUP_RULES: ("describe_security_group_rules", "SecurityGroupRules"),
    NETWORK_INTERFACES: ("describe_network_interfaces", "NetworkInterfaces"),
    NETWORK_ACLS: ("describe_network_acls", "NetworkAcls"),
    FLOW_LOGS: ("describe_flow_logs", "FlowLogs"),
    SUBNETS: ("describe_subnets", "Subnets"),
    VPCS: ("describe_vpcs", "Vpcs"),
}
INVENTORY_CALLS = (SECURITY_GROUPS, SECURITY_GROUP_RULES, NETWORK_INTERFACES, NETWORK_ACLS)
COVERAGE_CALLS = (FLOW_LOGS, SUBNETS, VPCS)
# Calls whose failure leaves their file out with a warning (what is lost) instead of failing the inventory.
OPTIONAL_CALLS: Mapping[str, str] = {
    NETWORK_ACLS: "nacl_changes cannot name the entry a Delete or Replace removed from the inventory "
                  "(add ec2:DescribeNetworkAcls to the role: auditor iam-policy)"}
SHOWN_IDS = 10  # resource IDs listed per note; the counters hold the totals


@dataclass(frozen=True)
class Documents:
    """The describe outputs of one account and region, as the AWS CLI prints them."""

    account_id: str
    region: str
    captured_at: datetime
    items: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)  # file stem -> list items
    warnings: tuple[str, ...] = ()  # optional calls that failed (their file is left out)


def collect(ec2: Any, account_id: str, region: str, *, coverage: bool = True,
            clock: Callable[[], datetime] = utcnow) -> Documents:
    """Call the describe APIs (every page) of one account and region."""
    items: dict[str, tuple[Mapping[str, Any], ...]] = {}
    warnings: list[str] = []
    captured_at = clock()
    for stem in INVENTORY_CALLS + (COVERAGE_CALLS if coverage else ()):
        operation, key = CALLS[stem]
        try:
            pages = ec2.get_paginator(operation).paginate()
            items[stem] = tuple(item for page in pages for item in page.get(key, []))
        except AuditorError:
            raise
        except Exception as exc:
            message = f"{account_id}/{region}: ec2:{_api_name(operation)} failed: {describe_error(exc)}"
            if stem in OPTIONAL_CALLS:
                # A role made from an older policy lacks the permission: the run goes on without that file.
                warnings.append(f"{message}; {OPTIONAL_CALLS[stem]}")
                continue
            raise EngineError(message, engine="aws_api") from exc
    return Documents(account_id=account_id, region=region, captured_at=captured_at, items=items,
                     warnings=tuple(warnings))


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_snapshot(root: Path, docs: Documents) -> list[Path]:
    """Write ``root/<account>/<region>/describe-*.json`` (AWS CLI shape plus ``captured_at``); returns the files."""
    folder = root / docs.account_id / docs.region
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, items in docs.items.items():
        key = CALLS[stem][1]
        path = folder / f"{stem}.json"
        body = {key: list(items), "captured_at": iso_z(docs.captured_at)}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, default=_json_default, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


# --- loading into a run -----------------------------------------------------------------------------------

def load(con: duckdb.DuckDBPyConnection, loaded: LoadedConfig, sessions: AwsSessions, target: Target, *,
         clock: Callable[[], datetime] = utcnow) -> tuple[InventorySnapshot, DataQuality]:
    """Load the live inventory of one target (an account and a region) into the inventory tables of ``con``.

    Returns the snapshot (its files named ``aws:<account>/<region>/describe-*.json``) and the coverage.
    """
    region = target.region or sessions.default_region()
    if not region:
        raise ConfigError("sources.inventory (aws_api) needs a region: set aws.regions, or accounts[].regions")
    account_id = sessions.caller_account(target.account)
    ec2 = sessions.client("ec2", region, target.account)
    spec = loaded.config.sources.inventory
    docs = collect(ec2, account_id, region, coverage=spec.flow_log_coverage, clock=clock)
    with tempfile.TemporaryDirectory(prefix="auditor-inventory-") as tmp:
        write_snapshot(Path(tmp), docs)
        snapshot = load_inventory(con, Path(tmp))
        prefix = str(Path(tmp)) + "/"
        files = tuple(replace(f, path="aws:" + f.path.removeprefix(prefix)) for f in snapshot.files)
    snapshot = replace(snapshot, files=files, warnings=snapshot.warnings + docs.warnings)
    quality = DataQuality()
    if spec.flow_log_coverage:
        quality = coverage(docs, athena_formats=_athena_formats(loaded))
    return snapshot, quality


def _athena_formats(loaded: Any) -> tuple[str, ...] | None:
    """The formats of the configured Athena flow-log tables (None when flow logs are not read through Athena)."""
    source = loaded.config.sources.flow_logs
    if source is None or source.engine != "athena":
        return None
    return tuple(_normal(t.format or DEFAULT_FORMAT) for t in source.tables)


def _normal(fmt: str) -> str:
    return " ".join(fmt.split())


# --- coverage ---------------------------------------------------------------------------------------------

def _ids(values: Iterable[str]) -> str:
    values = sorted(values)
    shown = ", ".join(values[:SHOWN_IDS])
    return shown + (f" and {len(values) - SHOWN_IDS} more" if len(values) > SHOWN_IDS else "")


def coverage(docs: Documents, *, athena_formats: Sequence[str] | None = None) -> DataQuality:
    """Which interfaces, subnets and VPCs no active flow log covers, and what each flow log records."""
    where = f"{docs.account_id}/{docs.region}"
    logs = [fl for fl in docs.items.get(FLOW_LOGS, ()) if isinstance(fl, Mapping)]
    active = [fl for fl in logs if fl.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]
    traffic: dict[str, set[str]] = {}
    for fl in active:
        traffic.setdefault(str(fl.get("ResourceId")), set()).add(str(fl.get("TrafficType", "ALL")))

    enis = [e for e in docs.items.get(NETWORK_INTERFACES, ()) if isinstance(e, Mapping)]
    subnets = {str(s.get("SubnetId")): s for s in docs.items.get(SUBNETS, ()) if isinstance(s, Mapping)}
    vpcs = {str(v.get("VpcId")) for v in docs.items.get(VPCS, ()) if isinstance(v, Mapping)}
    subnet_vpc = {sid: str(s.get("VpcId")) for sid, s in subnets.items()}

    def recorded(*resources: str | None) -> set[str]:
        kinds: set[str] = set()
        for r in resources:
            kinds |= traffic.get(r or "", set())
        return {"ACCEPT", "REJECT"} if "ALL" in kinds else kinds

    unlogged_enis, partial_enis = [], []
    for eni in enis:
        kinds = recorded(eni.get("NetworkInterfaceId"), eni.get("SubnetId"), eni.get("VpcId"))
        if not kinds:
            unlogged_enis.append(str(eni.get("NetworkInterfaceId")))
        elif kinds != {"ACCEPT", "REJECT"}:
            partial_enis.append(str(eni.get("NetworkInterfaceId")))
    for eni in enis:
        if eni.get("SubnetId"):
            subnet_vpc.setdefault(str(eni["SubnetId"]), str(eni.get("VpcId")))
    unlogged_subnets = [s for s in subnet_vpc if not recorded(s, subnet_vpc[s])]
    vpc_ids = vpcs | {str(e.get("VpcId")) for e in enis if e.get("VpcId")}
    unlogged_vpcs = [v for v in vpc_ids if not recorded(v)]

    notes: list[str] = []
    if enis and unlogged_enis:
        notes.append(f"{where}: {len(unlogged_enis)} of {len(enis)} network interfaces have no active flow log "
                     f"(on the interface, its subnet or its VPC): {_ids(unlogged_enis)}. Checks see no traffic of theirs.")
    if partial_enis:
        notes.append(f"{where}: {len(partial_enis)} network interfaces are logged for ACCEPT or REJECT traffic only: "
                     f"{_ids(partial_enis)}")
    if unlogged_subnets:
        notes.append(f"{where}: {len(unlogged_subnets)} subnets have no active flow log (on the subnet or its VPC): "
                     f"{_ids(unlogged_subnets)}")
    if unlogged_vpcs:
        notes.append(f"{where}: {len(unlogged_vpcs)} VPCs have no VPC-level flow log: {_ids(unlogged_vpcs)}")
    accept_only = reject_only = failed = 0
    known_formats = {_normal(f) for f in athena_formats} if athena_formats is not None else None
    for fl in sorted(logs, key=lambda f: str(f.get("FlowLogId"))):
        fid, resource = fl.get("FlowLogId"), fl.get("ResourceId")
        kind = fl.get("TrafficType", "ALL")
        dest = fl.get("LogDestination") or fl.get("LogGroupName") or "?"
        fmt = fl.get("LogFormat") or "(default format)"
        notes.append(f"{where}: flow log {fid} on {resource}: {kind} traffic to {fl.get('LogDestinationType', 'cloud-watch-logs')} "
                     f"{dest}, status {fl.get('FlowLogStatus', '?')}, format {fmt}")
        if kind == "ACCEPT":
            accept_only += 1
            notes.append(f"{where}: flow log {fid} records ACCEPT traffic only: rejected traffic of {resource} is not "
                         "logged (top_rejected_sources sees none of it)")
        elif kind == "REJECT":
            reject_only += 1
            notes.append(f"{where}: flow log {fid} records REJECT traffic only: accepted traffic of {resource} is not "
                         "logged (exposed_well_known_ports and unused_sg_rules see none of it)")
        if fl.get("DeliverLogsStatus") == "FAILED":
            failed += 1
            notes.append(f"{where}: flow log {fid} cannot deliver: {fl.get('DeliverLogsErrorMessage') or 'no message'}")
        if (known_formats is not None and fl.get("LogDestinationType") == "s3" and fl.get("LogFormat")
                and _normal(str(fl["LogFormat"])) not in known_formats):
            notes.append(f"{where}: flow log {fid} writes a format no configured Athena flow-log table has; add a "
                         "table with this format (auditor athena ddl) or its records are read with the wrong columns")
    counters = {
        "coverage_interfaces": len(enis),
        "coverage_interfaces_unlogged": len(unlogged_enis),
        "coverage_interfaces_partial": len(partial_enis),
        "coverage_subnets_unlogged": len(unlogged_subnets),
        "coverage_vpcs_unlogged": len(unlogged_vpcs),
        "flow_logs": len(logs),
        "flow_logs_accept_only": accept_only,
        "flow_logs_reject_only": reject_only,
        "flow_logs_delivery_failed": failed,
    }
    return DataQuality(notes=tuple(notes), counters=counters)
