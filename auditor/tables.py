"""The tables check SQL is written against, each column with its DuckDB type: ``flow_logs`` (the flow-log field
table, :mod:`auditor.logformat`), ``flow_summary`` (the window's flow summary that the flow-log checks read),
``cloudtrail`` and the inventory's. Below every stage, as the flow-log field
table is, so that the SQL toolkit can type a check's query when the check loads without importing the readers
that fill the tables (:mod:`auditor.engines.sources`), and the renderer, which reads check specs, imports no
engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

from sqlglot import exp

from auditor.logformat import TABLE_COLUMNS

# --- cloudtrail --------------------------------------------------------------------------------------------

# A column spec is "VARCHAR", ("STRUCT", ((field, spec), ...)), ("LIST", spec) or ("MAP",) (VARCHAR -> VARCHAR).
# The DuckDB types, the reader's Arrow schema and its conversion of an event all come from this one description.
Spec = Union[str, tuple]
TEXT = "VARCHAR"


def _struct(*fields: tuple[str, Spec]) -> tuple:
    return ("STRUCT", fields)


_SESSION_ISSUER = _struct(("type", TEXT), ("principalid", TEXT), ("arn", TEXT), ("accountid", TEXT),
                          ("username", TEXT))
_USER_IDENTITY = _struct(
    ("type", TEXT), ("principalid", TEXT), ("arn", TEXT), ("accountid", TEXT), ("invokedby", TEXT),
    ("accesskeyid", TEXT), ("username", TEXT),
    ("sessioncontext", _struct(
        ("attributes", _struct(("mfaauthenticated", TEXT), ("creationdate", TEXT))),
        ("sessionissuer", _SESSION_ISSUER),
        ("ec2roledelivery", TEXT),
        ("webidfederationdata", ("MAP",)),
    )),
)
_RESOURCE = _struct(("arn", TEXT), ("accountid", TEXT), ("type", TEXT))
_TLS_DETAILS = _struct(("tlsversion", TEXT), ("ciphersuite", TEXT), ("clientprovidedhostheader", TEXT))

# In the order of the Athena DDL (https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html), lower-cased.
CLOUDTRAIL_EVENT_FIELDS: tuple[tuple[str, Spec], ...] = (
    ("eventversion", TEXT),
    ("useridentity", _USER_IDENTITY),
    ("eventtime", TEXT),
    ("eventsource", TEXT),
    ("eventname", TEXT),
    ("awsregion", TEXT),
    ("sourceipaddress", TEXT),
    ("useragent", TEXT),
    ("errorcode", TEXT),
    ("errormessage", TEXT),
    ("requestparameters", TEXT),
    ("responseelements", TEXT),
    ("additionaleventdata", TEXT),
    ("requestid", TEXT),
    ("eventid", TEXT),
    ("readonly", TEXT),
    ("resources", ("LIST", _RESOURCE)),
    ("eventtype", TEXT),
    ("apiversion", TEXT),
    ("recipientaccountid", TEXT),
    ("serviceeventdetails", TEXT),
    ("sharedeventid", TEXT),
    ("vpcendpointid", TEXT),
    ("tlsdetails", _TLS_DETAILS),
)
# Ours, after the event's: where the event was read from.
CLOUDTRAIL_OWN_FIELDS: tuple[tuple[str, Spec], ...] = (("account_id", TEXT), ("region", TEXT))


def duckdb_type(spec: Spec) -> str:
    if spec == TEXT:
        return "VARCHAR"
    if spec[0] == "STRUCT":
        return "STRUCT(" + ", ".join(f"{name} {duckdb_type(s)}" for name, s in spec[1]) + ")"
    if spec[0] == "LIST":
        return duckdb_type(spec[1]) + "[]"
    return "MAP(VARCHAR, VARCHAR)"


CLOUDTRAIL_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, duckdb_type(spec)) for name, spec in CLOUDTRAIL_EVENT_FIELDS + CLOUDTRAIL_OWN_FIELDS)

# --- the inventory -----------------------------------------------------------------------------------------

_V, _I, _B = "VARCHAR", "INTEGER", "BOOLEAN"
# What each column holds: the docstring of auditor.engines.sources.inventory.
INVENTORY_TABLES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "sg_groups": (("account_id", _V), ("region", _V), ("group_id", _V), ("group_name", _V), ("vpc_id", _V),
                  ("description", _V), ("owner_id", _V)),
    "sg_rules": (("account_id", _V), ("region", _V), ("rule_id", _V), ("group_id", _V), ("group_owner_id", _V),
                 ("is_egress", _B), ("protocol", _I), ("from_port", _I), ("to_port", _I), ("cidr_ipv4", _V),
                 ("cidr_ipv6", _V), ("prefix_list_id", _V), ("referenced_group_id", _V),
                 ("referenced_group_owner_id", _V), ("referenced_vpc_id", _V), ("description", _V)),
    "enis": (("account_id", _V), ("region", _V), ("interface_id", _V), ("vpc_id", _V), ("subnet_id", _V),
             ("status", _V), ("interface_type", _V), ("description", _V), ("requester_managed", _B),
             ("instance_id", _V), ("owner_id", _V), ("name", _V)),
    "eni_groups": (("account_id", _V), ("region", _V), ("interface_id", _V), ("group_id", _V)),
    "eni_addresses": (("account_id", _V), ("region", _V), ("interface_id", _V), ("address", _V), ("kind", _V)),
    "nacl_entries": (("account_id", _V), ("region", _V), ("network_acl_id", _V), ("vpc_id", _V),
                     ("rule_number", _I), ("egress", _B), ("rule_action", _V), ("protocol", _I), ("from_port", _I),
                     ("to_port", _I), ("cidr", _V)),
}

# --- the security-group timeline --------------------------------------------------------------------------

_T, _N = "TIMESTAMPTZ", "BIGINT"
# Built once per run from the inventory and CloudTrail (auditor.timeline; docs/timeline.md says what each holds).
# valid_from NULL: since before the timeline starts; valid_until NULL: still in force at its end.
TIMELINE_TABLES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "sg_rule_versions": (("rule_id", _V), ("group_id", _V), ("is_egress", _B), ("protocol", _I), ("from_port", _I),
                         ("to_port", _I), ("cidr_ipv4", _V), ("cidr_ipv6", _V), ("prefix_list_id", _V),
                         ("referenced_group_id", _V), ("valid_from", _T), ("valid_until", _T),
                         ("opened_event_id", _V), ("opened_by", _V), ("opened_ip", _V), ("closed_event_id", _V),
                         ("closed_by", _V), ("closed_ip", _V)),
    "eni_group_versions": (("interface_id", _V), ("group_id", _V), ("valid_from", _T), ("valid_until", _T),
                           ("opened_event_id", _V), ("closed_event_id", _V)),
    "sg_unknown": (("kind", _V), ("resource_id", _V), ("piece", _V), ("valid_from", _T), ("valid_until", _T),
                   ("reason", _V)),
    # the sources the timeline read ('cloudtrail', 'flow_logs'): a count of flows is NULL, not 0, without flow logs
    "timeline_inputs": (("source", _V),),
    # the interfaces whose admitted traffic changed inside the window, and their ACCEPTed records per start time
    "timeline_changed": (("interface_id", _V),),
    "flow_times": (("interface_id", _V), ("dstaddr", _V), ("flow_direction", _V), ("dstport", _I), ("protocol", _I),
                   ("srcaddr", _V), ("start", _N), ("flows", _N)),
}

# --- the flow summary -----------------------------------------------------------------------------------------

# What auditor/engines/flow_summary.sql gives, with the types of its columns: the keys keep the flow-log field
# table's types; counts and sums are BIGINT, as Trino's count(*) and sum(bigint) are.
FLOW_SUMMARY = "flow_summary"
_FIELD_TYPES = dict(TABLE_COLUMNS)
FLOW_SUMMARY_KEYS = ("account_id", "region", "interface_id", "flow_direction", "srcaddr", "dstaddr", "dstport",
                     "protocol", "action", "log_status")
FLOW_SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    tuple((name, _FIELD_TYPES[name]) for name in FLOW_SUMMARY_KEYS)
    + (("start_hour", "BIGINT"), ("flows", "BIGINT"), ("packets", "BIGINT"), ("bytes", "BIGINT"),
       ("first_start", "BIGINT"), ("last_start", "BIGINT")))

# --- all of them -------------------------------------------------------------------------------------------

LOCAL_TABLES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "flow_logs": TABLE_COLUMNS, FLOW_SUMMARY: FLOW_SUMMARY_COLUMNS, "cloudtrail": CLOUDTRAIL_COLUMNS,
    **INVENTORY_TABLES, **TIMELINE_TABLES}


def ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of ``table`` with ``columns`` (name, DuckDB type), in DuckDB SQL."""
    defs = [exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind, dialect="duckdb"))
            for name, kind in columns]
    create = exp.Create(kind="TABLE", exists=True, this=exp.Schema(this=exp.to_table(table), expressions=defs))
    return create.sql(dialect="duckdb", identify=True)
