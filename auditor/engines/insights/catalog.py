"""Which Logs Insights field names exist for each table, and the SQL (over our DuckDB tables) behind each.

Flow logs: CloudWatch discovers the default format's fields under these names
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html):
``version, accountId, interfaceId, srcAddr, dstAddr, srcPort, dstPort, protocol, packets, bytes, startTime,
endTime, action, logStatus``. The other flow-log fields (v3 to v8, Transit Gateway) have no CloudWatch name;
we give them the camel-case of their LogFormat name (``flow-direction`` -> ``flowDirection``), the names the
generated ``parse`` clause uses in the cloud (:mod:`auditor.engines.insights.parse_clause`).

CloudTrail: the event's JSON keys as dotted paths (``userIdentity.arn``, ``requestParameters.groupId``,
``responseElements.securityGroupRuleSet.items.0.groupId``), the way CloudWatch flattens JSON events: a number
in a path indexes an array (same page, "Fields in JSON logs"). Key spelling is exact, as in CloudWatch.

An unknown name is an error with a did-you-mean: a field that the local tables do not hold could exist in
CloudWatch, and answering NULL for it would be a silently different answer.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from auditor.logformat import FIELDS as FLOW_FIELDS

# Static types the compiler reasons with: int, float, str, bool, ts (timestamp), obj (a whole JSON object, as text).
NUMERIC = ("int", "float")


@dataclass(frozen=True)
class FieldDef:
    """A field as the compiler sees it: the SQL that computes it over the table's row, and its static type."""

    name: str
    sql: exp.Expression
    type: str
    column: str | None = None  # the table column when the field is one column as it is


def col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def lit(value: str | int) -> exp.Expression:
    return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)


class Catalog:
    """The fields of one table. ``resolve`` returns None for an unknown name; ``names`` lists the known ones."""

    table: str = ""
    event_time: str | None = "@timestamp"  # the field earliest()/latest() and bin() use

    def resolve(self, name: str) -> FieldDef | None:  # pragma: no cover - interface
        raise NotImplementedError

    def names(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def unknown(self, name: str) -> str:
        """The message for an unknown field: a did-you-mean and, when short, the known names."""
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        listed = f"; known fields: {', '.join(known)}" if len(known) <= 40 else ""
        return f"unknown field '{name}'{hint}{listed}"

    def window(self, since: exp.Expression, until: exp.Expression, since_s: exp.Expression,
               until_s: exp.Expression) -> exp.Expression | None:
        """The condition that a row lies in the window; None for tables without one."""
        return None


# ------------------------------------------------------------------------------------------------- flow logs

_CLOUDWATCH_NAMES = {"account-id": "accountId", "interface-id": "interfaceId", "srcaddr": "srcAddr",
                     "dstaddr": "dstAddr", "srcport": "srcPort", "dstport": "dstPort", "start": "startTime",
                     "end": "endTime", "log-status": "logStatus"}
_PART_CASE = {"srcaddr": "SrcAddr", "dstaddr": "DstAddr"}


def insights_name(logformat_name: str) -> str:
    """The Logs Insights field name of a flow-log field (``dstport`` -> ``dstPort``, ``tgw-src-eni`` -> ``tgwSrcEni``)."""
    if logformat_name in _CLOUDWATCH_NAMES:
        return _CLOUDWATCH_NAMES[logformat_name]
    first, *rest = logformat_name.split("-")
    return first + "".join(_PART_CASE.get(p, p[:1].upper() + p[1:]) for p in rest)


_SQL_TYPES = {"INTEGER": "int", "BIGINT": "int", "VARCHAR": "str"}
DEFAULT_V2 = tuple(f for f in FLOW_FIELDS if f.version == 2)


class FlowLogsCatalog(Catalog):
    """The ``flow_logs`` table under CloudWatch's names, plus @timestamp, @message and @logStream."""

    table = "flow_logs"

    def __init__(self) -> None:
        self._fields: dict[str, FieldDef] = {}
        for f in FLOW_FIELDS:
            name = insights_name(f.name)
            self._fields[name] = FieldDef(name, col(f.column), _SQL_TYPES[f.type], f.column)
        # @timestamp: the record's start (our reading of how VPC delivers flow logs to CloudWatch Logs, as the
        # issue states it); the same to_timestamp() the checks' SQL uses, so the types agree.
        self._fields["@timestamp"] = FieldDef("@timestamp", fn("to_timestamp", col("start")), "ts")
        # @message: the original line. The reader keeps no raw line, so it is rebuilt from the columns in the
        # default format's order, "-" for a missing value (see docs/insights.md: equal to the line for v2 files).
        parts = [exp.Coalesce(this=exp.cast(col(f.column), "VARCHAR"), expressions=[lit("-")]) for f in DEFAULT_V2]
        self._fields["@message"] = FieldDef("@message", fn("concat_ws", lit(" "), *parts), "str")
        # @logStream: VPC names a flow log's stream in CloudWatch Logs after the interface, "<eni>-all"
        # (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-cwl.html).
        self._fields["@logStream"] = FieldDef("@logStream", fn("concat", col("interface_id"), lit("-all")), "str")

    def resolve(self, name: str) -> FieldDef | None:
        return self._fields.get(name)

    def names(self) -> list[str]:
        return list(self._fields)

    def window(self, since, until, since_s, until_s):  # type: ignore[override]
        start = col("start")
        return exp.and_(exp.GTE(this=start, expression=since_s), exp.LT(this=start, expression=until_s))


# ------------------------------------------------------------------------------------------------ CloudTrail

# CloudTrail record fields and their canonical spelling
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
_CT_SCALARS = ("eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
               "errorCode", "errorMessage", "requestID", "eventID", "readOnly", "eventType", "apiVersion",
               "recipientAccountId", "sharedEventID", "vpcEndpointId")
_CT_JSON = ("requestParameters", "responseElements", "additionalEventData", "serviceEventDetails")
# Struct columns: canonical key -> (table member, nested spec or None for a leaf).
_Struct = Mapping[str, tuple[str, "object"]]
_SESSION_ISSUER: _Struct = {k: (k.lower(), None) for k in ("type", "principalId", "arn", "accountId", "userName")}
_USER_IDENTITY: _Struct = {
    **{k: (k.lower(), None) for k in ("type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId",
                                      "userName")},
    "sessionContext": ("sessioncontext", {
        "attributes": ("attributes", {"mfaAuthenticated": ("mfaauthenticated", None),
                                      "creationDate": ("creationdate", None)}),
        "sessionIssuer": ("sessionissuer", _SESSION_ISSUER),
        "ec2RoleDelivery": ("ec2roledelivery", None),
    }),
}
_TLS: _Struct = {k: (k.lower(), None) for k in ("tlsVersion", "cipherSuite", "clientProvidedHostHeader")}
_RESOURCE: _Struct = {"ARN": ("arn", None), "accountId": ("accountid", None), "type": ("type", None)}
_STRUCTS: Mapping[str, tuple[str, _Struct]] = {"userIdentity": ("useridentity", _USER_IDENTITY),
                                               "tlsDetails": ("tlsdetails", _TLS)}
_JSON_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def _struct_leaves(prefix: str, spec: _Struct) -> list[str]:
    out = []
    for key, (_, inner) in spec.items():
        out.extend(_struct_leaves(f"{prefix}.{key}", inner) if isinstance(inner, Mapping) else [f"{prefix}.{key}"])
    return out


def _json_object(spec: _Struct, value: exp.Expression) -> exp.Expression:
    """A struct value as a JSON object with CloudTrail's key spelling (NULL stays NULL)."""
    args: list[exp.Expression] = []
    for key, (member, inner) in spec.items():
        v = fn("struct_extract", value, lit(member))
        args += [lit(key), _json_object(inner, v) if isinstance(inner, Mapping) else v]
    return exp.Case(ifs=[exp.If(this=exp.Is(this=value, expression=exp.Null()), true=exp.Null())],
                    default=fn("json_object", *args))


class CloudTrailCatalog(Catalog):
    """The ``cloudtrail`` table under the event's own JSON paths, plus @timestamp, @message and @logStream."""

    table = "cloudtrail"

    def __init__(self) -> None:
        self._fixed: dict[str, FieldDef] = {}
        for key in _CT_SCALARS:
            self._fixed[key] = FieldDef(key, col(key.lower()), "str", key.lower())
        for key in _CT_JSON:
            self._fixed[key] = FieldDef(key, col(key.lower()), "obj", key.lower())
        # @timestamp: the event time. @logStream: CloudTrail names its streams "<account>_CloudTrail_<region>"
        # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html).
        self._fixed["@timestamp"] = FieldDef("@timestamp", exp.TryCast(this=col("eventtime"),
                                                                      to=exp.DataType.build("TIMESTAMPTZ")), "ts")
        self._fixed["@logStream"] = FieldDef("@logStream", fn("concat", col("account_id"), lit("_CloudTrail_"),
                                                              col("region")), "str")
        self._fixed["@message"] = FieldDef("@message", self._message(), "str")

    @staticmethod
    def _message() -> exp.Expression:
        # The event as JSON, rebuilt from the columns with CloudTrail's key spelling (the reader keeps no raw
        # event): keys the event lacks come out as null, keys our table does not hold are not there.
        args: list[exp.Expression] = []
        for key in ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
                    "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
                    "responseElements", "additionalEventData", "requestID", "eventID", "readOnly", "resources",
                    "eventType", "apiVersion", "recipientAccountId", "serviceEventDetails", "sharedEventID",
                    "vpcEndpointId", "tlsDetails"):
            column = col(key.lower())
            if key in _STRUCTS:
                value = _json_object(_STRUCTS[key][1], column)
            elif key == "resources":
                value = fn("list_transform", column, exp.Lambda(
                    this=_json_object(_RESOURCE, exp.column("r")), expressions=[exp.to_identifier("r")]))
            elif key in _CT_JSON:
                value = exp.cast(column, "JSON")
            else:
                value = column
            args += [lit(key), value]
        return exp.cast(fn("json_object", *args), "VARCHAR")

    def resolve(self, name: str) -> FieldDef | None:
        if name in self._fixed:
            return self._fixed[name]
        head, _, rest = name.partition(".")
        if not rest:
            return None
        parts = rest.split(".")
        if head in _CT_JSON:
            path = "$"
            for p in parts:
                if re.fullmatch(r"[0-9]+", p):
                    path += f"[{int(p)}]"
                elif _JSON_KEY.fullmatch(p):
                    path += f'."{p}"'
                else:
                    return None
            # Only leaves are fields, as in CloudWatch's flattening: a path that ends on an object or an array
            # is no field at all (NULL), not the object's text.
            source = col(head.lower())
            leaf = exp.Case(ifs=[exp.If(this=exp.In(this=fn("json_type", source, lit(path)),
                                                    expressions=[lit("OBJECT"), lit("ARRAY")]), true=exp.Null())],
                            default=fn("json_extract_string", source.copy(), lit(path)))
            return FieldDef(name, leaf, "str")
        if head in _STRUCTS:
            column, spec = _STRUCTS[head]
            return self._struct_path(name, col(column), spec, parts)
        if head == "resources" and len(parts) == 2 and re.fullmatch(r"[0-9]+", parts[0]):
            item = fn("list_extract", col("resources"), lit(int(parts[0]) + 1))
            return self._struct_path(name, item, _RESOURCE, parts[1:])
        return None

    @staticmethod
    def _struct_path(name: str, value: exp.Expression, spec: _Struct, parts: list[str]) -> FieldDef | None:
        for i, p in enumerate(parts):
            if p not in spec:
                return None
            member, inner = spec[p]
            value = fn("struct_extract", value, lit(member))
            if isinstance(inner, Mapping):
                spec = inner
                continue
            return FieldDef(name, value, "str") if i == len(parts) - 1 else None
        return None  # a path that stops at an object: only its leaves are fields

    def names(self) -> list[str]:
        out = list(self._fixed)
        for head, (_, spec) in _STRUCTS.items():
            out += _struct_leaves(head, spec)
        out += [f"resources.0.{k}" for k in _RESOURCE]
        return out

    def unknown(self, name: str) -> str:
        head = name.split(".", 1)[0]
        if name == head and (head in _STRUCTS or head == "resources"):
            return (f"{head} is an object: name one of its fields "
                    f"({', '.join(n for n in self.names() if n.startswith(head + '.'))})")
        if head in _STRUCTS or head == "resources":
            return (f"'{name}' is not a field of {head}: name one of its leaves "
                    f"({', '.join(n for n in self.names() if n.startswith(head + '.'))})")
        return super().unknown(name)

    def window(self, since, until, since_s, until_s):  # type: ignore[override]
        t = self._fixed["@timestamp"].sql
        return exp.and_(exp.GTE(this=t.copy(), expression=since), exp.LT(this=t.copy(), expression=until))


# --------------------------------------------------------------------------------------------- any table

_TYPE_OF_DUCKDB: Callable[[str], str] = lambda t: (  # noqa: E731 - a one-line mapping
    "int" if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                   "UBIGINT", "UHUGEINT")
    else "float" if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL")
    else "bool" if t == "BOOLEAN"
    else "ts" if t.startswith("TIMESTAMP") or t == "DATE"
    else "str")


class TableCatalog(Catalog):
    """Any table whose columns are its fields (merged partial results, raw lines): no window, no @timestamp
    unless the table has that column."""

    def __init__(self, table: str, columns: Mapping[str, str]) -> None:
        self.table = table
        self._fields = {name: FieldDef(name, col(name), _TYPE_OF_DUCKDB(str(t).upper()), name)
                        for name, t in columns.items()}
        self.event_time = "@timestamp" if "@timestamp" in self._fields else None

    def resolve(self, name: str) -> FieldDef | None:
        return self._fields.get(name)

    def names(self) -> list[str]:
        return list(self._fields)


def catalog_for(table: str) -> Catalog:
    """The catalog of one of the engine tables."""
    if table == "flow_logs":
        return FlowLogsCatalog()
    if table == "cloudtrail":
        return CloudTrailCatalog()
    raise ValueError(f"no Logs Insights catalog for table '{table}' (flow_logs or cloudtrail)")
