"""The VPC Flow Logs record format: every field AWS defines, its table column and type, and the parser of a
``LogFormat`` string. Below every stage, so the config schema validates a format the way the readers parse it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldSpec:
    """One flow-log field: its LogFormat name, its table (and Parquet) column, its DuckDB type, its version."""

    name: str
    column: str
    type: str
    version: int


def _field(name: str, type_: str, version: int) -> FieldSpec:
    return FieldSpec(name, name.replace("-", "_"), type_, version)


# The VPC fields in the order of the "Available fields" table, whose first 14 rows are the default format
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html), then the Transit Gateway-only fields
# in the order of the Transit Gateway table (https://docs.aws.amazon.com/vpc/latest/tgw/tgw-flow-logs.html).
# Types follow the Parquet data types AWS lists for each field and the Athena DDL
# (https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs.html): protocol is INT_32 in Parquet but BIGINT in
# the DDL, and the DDL wins because that is the table the checks' SQL is written against.
FIELDS: tuple[FieldSpec, ...] = (
    _field("version", "INTEGER", 2),
    _field("account-id", "VARCHAR", 2),
    _field("interface-id", "VARCHAR", 2),
    _field("srcaddr", "VARCHAR", 2),
    _field("dstaddr", "VARCHAR", 2),
    _field("srcport", "INTEGER", 2),
    _field("dstport", "INTEGER", 2),
    _field("protocol", "BIGINT", 2),
    _field("packets", "BIGINT", 2),
    _field("bytes", "BIGINT", 2),
    _field("start", "BIGINT", 2),
    _field("end", "BIGINT", 2),
    _field("action", "VARCHAR", 2),
    _field("log-status", "VARCHAR", 2),
    _field("vpc-id", "VARCHAR", 3),
    _field("subnet-id", "VARCHAR", 3),
    _field("instance-id", "VARCHAR", 3),
    _field("tcp-flags", "INTEGER", 3),
    _field("type", "VARCHAR", 3),
    _field("pkt-srcaddr", "VARCHAR", 3),
    _field("pkt-dstaddr", "VARCHAR", 3),
    _field("region", "VARCHAR", 4),
    _field("az-id", "VARCHAR", 4),
    _field("sublocation-type", "VARCHAR", 4),
    _field("sublocation-id", "VARCHAR", 4),
    _field("pkt-src-aws-service", "VARCHAR", 5),
    _field("pkt-dst-aws-service", "VARCHAR", 5),
    _field("flow-direction", "VARCHAR", 5),
    _field("traffic-path", "INTEGER", 5),
    _field("ecs-cluster-arn", "VARCHAR", 7),
    _field("ecs-cluster-name", "VARCHAR", 7),
    _field("ecs-container-instance-arn", "VARCHAR", 7),
    _field("ecs-container-instance-id", "VARCHAR", 7),
    _field("ecs-container-id", "VARCHAR", 7),
    _field("ecs-second-container-id", "VARCHAR", 7),
    _field("ecs-service-name", "VARCHAR", 7),
    _field("ecs-task-definition-arn", "VARCHAR", 7),
    _field("ecs-task-arn", "VARCHAR", 7),
    _field("ecs-task-id", "VARCHAR", 7),
    _field("reject-reason", "VARCHAR", 8),
    _field("resource-type", "VARCHAR", 6),
    _field("tgw-id", "VARCHAR", 6),
    _field("tgw-attachment-id", "VARCHAR", 6),
    _field("tgw-src-vpc-account-id", "VARCHAR", 6),
    _field("tgw-dst-vpc-account-id", "VARCHAR", 6),
    _field("tgw-src-vpc-id", "VARCHAR", 6),
    _field("tgw-dst-vpc-id", "VARCHAR", 6),
    _field("tgw-src-subnet-id", "VARCHAR", 6),
    _field("tgw-dst-subnet-id", "VARCHAR", 6),
    _field("tgw-src-eni", "VARCHAR", 6),
    _field("tgw-dst-eni", "VARCHAR", 6),
    _field("tgw-src-az-id", "VARCHAR", 6),
    _field("tgw-dst-az-id", "VARCHAR", 6),
    _field("tgw-pair-attachment-id", "VARCHAR", 6),
    _field("packets-lost-no-route", "BIGINT", 6),
    _field("packets-lost-blackhole", "BIGINT", 6),
    _field("packets-lost-mtu-exceeded", "BIGINT", 6),
    _field("packets-lost-ttl-expired", "BIGINT", 6),
)

TABLE_COLUMNS: tuple[tuple[str, str], ...] = tuple((f.column, f.type) for f in FIELDS)

# "The default format includes all version 2 fields, in the same order that they appear in the table."
DEFAULT_FORMAT: str = " ".join(f"${{{f.name}}}" for f in FIELDS if f.version == 2)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}
FIELDS_BY_COLUMN = {f.column: f for f in FIELDS}
DEFAULT_COLUMNS = tuple(f.column for f in FIELDS if f.version == 2)
_LOG_TOKEN = re.compile(r"^\$\{([^}]*)\}$")


def parse_log_format(fmt: str) -> tuple[str, ...]:
    """The column names of an AWS ``LogFormat`` (``"${version} ${vpc-id} ..."``, or plain field names).

    Raises ValueError naming an unknown or repeated field, with the closest known name.
    """
    columns: list[str] = []
    for token in fmt.split():
        m = _LOG_TOKEN.match(token)
        name = m.group(1) if m else token
        spec = FIELDS_BY_NAME.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(FIELDS_BY_NAME), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown flow-log field '{name}'{hint}")
        if spec.column in columns:
            raise ValueError(f"flow-log field '{name}' appears twice in the format")
        columns.append(spec.column)
    if not columns:
        raise ValueError("a flow-log format needs at least one field")
    return tuple(columns)
