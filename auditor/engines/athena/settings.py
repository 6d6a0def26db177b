"""Config models of the Athena engine, the live AWS inventory, accounts and prices.

``auditor.config`` assembles these into the one schema; this module must not import it.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from auditor.configbase import Strict

# Names Athena and Glue accept for databases, tables and columns: letters, digits, underscores
# (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html). Hyphenated partition
# columns (Hive's aws-account-id) are allowed too, because AWS's own Hive-compatible DDL uses them.
_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"
_S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$"
_FLOW_LOG_ID = r"^fl-[0-9a-f]{8,17}$"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}


def parse_size(value: Union[int, str]) -> int:
    """Bytes from ``10000000``, ``"10 GB"`` (powers of 1000) or ``"10GiB"`` (powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like '10 GB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    m = _SIZE.match(str(value))
    if m is None:
        raise ValueError(f"{value!r} is not a size; write bytes, or a number with B, KB, MB, GB, TB (or KiB, MiB ...)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


class AthenaTableSpec(Strict):
    """One Athena table of a source. Text flow-log tables are positional, so each LogFormat needs its own."""

    name: str = Field(pattern=_NAME, description="The table's name in the database.")
    format: Optional[str] = Field(None, description="The flow log's LogFormat (`${version} ${account-id} ...`), "
                                                    "the order of the table's columns. Default: the v2 default format.")
    file_format: Literal["text", "parquet"] = Field("text", description="How the flow logs are stored: text "
                                                                         "(.log.gz) or parquet.")
    flow_log_ids: tuple[str, ...] = Field((), description="Read only the files of these flow logs (fl-...), by "
                                                          "their S3 object names (\"$path\"), when several flow "
                                                          "logs of different formats share a prefix.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("format")
    @classmethod
    def _known_fields(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            from auditor.engines.sources.flowlogs import parse_log_format
            parse_log_format(v)  # raises ValueError with a did-you-mean
        return v

    @field_validator("flow_log_ids")
    @classmethod
    def _ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if not re.match(_FLOW_LOG_ID, x)]
        if bad:
            raise ValueError(f"not flow log IDs (fl-...): {', '.join(bad)}")
        return v


class ProjectionSpec(Strict):
    """The partition columns of the tables, which differ between AWS's DDL variants."""

    layout: Literal["day", "region_day", "hive"] = Field(
        "region_day", description="day: one day partition (AWS's CloudTrail and single-account flow-log DDL); "
                                  "region_day: an optional account, a region and a day partition (ours, and AWS's "
                                  "multi-account projection); hive: year/month/day(/hour) partitions of "
                                  "Hive-compatible prefixes.")
    account_column: Optional[str] = Field("aws_account_id", pattern=_NAME,
                                          description="The account partition column (region_day, hive); null "
                                                      "when the table has none. AWS's projection DDL calls it accid.")
    region_column: Optional[str] = Field("aws_region", pattern=_NAME,
                                         description="The region partition column (region_day, hive); null when "
                                                     "the table has none. AWS's projection DDL calls it region.")
    day_column: str = Field("day", pattern=_NAME, description="The day partition column (day, region_day); "
                                                              "AWS's CloudTrail DDL calls it timestamp.")
    day_type: Literal["string", "date"] = Field("string", description="string: 'yyyy/MM/dd' as in the S3 path "
                                                                     "(partition projection); date: a DATE column.")
    hourly: bool = Field(False, description="The flow logs use hourly partitions (an hour folder under each day); "
                                            "the DDL adds an hour partition. Queries still prune by day.")


class AthenaSourceSpec(Strict):
    """A flow-log or CloudTrail source read through Athena."""

    engine: Literal["athena"] = Field(description="Read this source through Athena.")
    database: str = Field(pattern=_NAME, description="The Glue database that holds the tables.")
    tables: tuple[AthenaTableSpec, ...] = Field(min_length=1, description="The tables: a name, or {name, format, "
                                                "file_format, flow_log_ids}. For text flow logs, one per log format.")
    workgroup: str = Field("primary", pattern=r"^[A-Za-z0-9._-]{1,128}$",
                           description="The Athena workgroup. Set BytesScannedCutoffPerQuery on it as the hard stop.")
    output_location: Optional[str] = Field(None, pattern=_S3_URI,
                                           description="s3:// prefix for query results, unless the workgroup enforces one.")
    location: str = Field(pattern=_S3_URI, description="The s3:// folder that holds the <account>/ folders: the "
                                                       "AWSLogs/ folder (AWSLogs/o-.../ for an organization trail). "
                                                       "It feeds the DDL, the budget estimate and the IAM policy.")
    region: Optional[str] = Field(None, pattern=_REGION, description="The region of the Athena workgroup and "
                                                                      "tables. Default: the session's region.")
    projection: ProjectionSpec = Field(default_factory=ProjectionSpec, description="The tables' partition columns.")

    @field_validator("location", "output_location")
    @classmethod
    def _folder(cls, v: Optional[str]) -> Optional[str]:
        return v if v is None or v.endswith("/") else v + "/"

    @field_validator("tables")
    @classmethod
    def _unique(cls, v: tuple[AthenaTableSpec, ...]) -> tuple[AthenaTableSpec, ...]:
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"a table is listed twice: {', '.join(sorted(names))}")
        return v


class AwsApiInventorySpec(Strict):
    """The EC2 inventory read live through the EC2 API (paginated describe calls)."""

    engine: Literal["aws_api"] = Field(description="Read the inventory through the EC2 API of each audited account "
                                                   "and region.")
    flow_log_coverage: bool = Field(True, description="Also call ec2:DescribeFlowLogs and report interfaces, "
                                                      "subnets and VPCs that no flow log covers.")


class AwsSettings(Strict):
    profile: Optional[str] = Field(None, description="A named AWS profile; otherwise the standard boto3 credential chain.")
    regions: tuple[str, ...] = Field((), description="Regions to audit.")
    max_parallel: int = Field(4, ge=1, le=64, description="Accounts and regions audited at the same time.")

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if not re.match(_REGION, r)]
        if bad:
            raise ValueError(f"not region names: {', '.join(bad)}")
        return tuple(dict.fromkeys(v))


class AccountSpec(Strict):
    id: str = Field(pattern=r"^\d{12}$", description="The 12-digit account ID.")
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$",
                          description="The role to assume in the account.")
    external_id: Optional[str] = Field(None, min_length=2, max_length=1224,
                                       description="The external ID the role's trust policy requires.")
    regions: Optional[tuple[str, ...]] = Field(None, description="Regions for this account; default aws.regions.")

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: Optional[tuple[str, ...]]) -> Optional[tuple[str, ...]]:
        if v is not None:
            bad = [r for r in v if not re.match(_REGION, r)]
            if bad:
                raise ValueError(f"not region names: {', '.join(bad)}")
            v = tuple(dict.fromkeys(v))
        return v

    @model_validator(mode="after")
    def _role_in_account(self) -> "AccountSpec":
        if self.role_arn.split(":")[4] != self.id:
            raise ValueError(f"role_arn {self.role_arn} is not in account {self.id}")
        return self


class AthenaSettings(Strict):
    max_bytes_scanned: Optional[Union[int, str]] = Field(
        None, description="A budget for the whole run, in bytes or like '50 GB'. Before each query the bytes "
                          "under its pruned partitions are listed in S3; a query that would go over is skipped.")
    timeout: str = Field("30m", description="Stop a query (StopQueryExecution) that runs longer than this.")

    @field_validator("max_bytes_scanned")
    @classmethod
    def _size(cls, v: Optional[Union[int, str]]) -> Optional[int]:
        return None if v is None else parse_size(v)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        from auditor.timeparse import parse_duration
        parse_duration(v)
        return v


class PricingSettings(Strict):
    athena_usd_per_tb: float = Field(5.0, ge=0, description="Athena price per TB scanned (us-east-1 list price).")
    athena_min_bytes: int = Field(10 * 1000**2, ge=0, description="Athena's minimum billed bytes per query (10 MB).")
    insights_usd_per_gb: float = Field(0.005, ge=0, description="Logs Insights price per GB scanned.")
