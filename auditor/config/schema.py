"""The one config schema: every model of ``config.yaml``, each setting with its default and its help text,
on one strict base (frozen, unknown keys forbidden). :mod:`auditor.config.loader` reads a file into it with
``file:line:column`` errors; ``docs/configuration.md`` is generated from it (``python -m auditor.config.docs``).

Sections: the base and shared types; the local sources; the AWS side (Athena sources, the live inventory,
accounts, prices, limits); Logs Insights; the evidence archive; suites, the scheduler and email; the whole file.
"""

from __future__ import annotations

import re
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from auditor.logformat import parse_log_format
from auditor.registry import did_you_mean
from auditor.timeparse import parse_duration

# --- the base ------------------------------------------------------------------------------------------

class Strict(BaseModel):
    """The base of every config model and of ``check.yaml``'s: frozen, unknown keys forbidden."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def known_log_format(value: str | None) -> str | None:
    """Validate a flow log's LogFormat (``${version} ${account-id} ...``): every field known, none repeated.
    Raises ValueError with a did-you-mean; for the ``format`` validators of the flow-log source models."""
    if value is not None:
        parse_log_format(value)
    return value


# A LogFormat field, validated as the flow-log reader will parse it.
LogFormat = Annotated[Optional[str], AfterValidator(known_log_format)]


# --- the AWS side: Athena sources, the live inventory, accounts, prices ---------------------------------

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
                                                          "logs of different formats share a prefix. Athena still "
                                                          "reads the other logs' files there: give each log its own "
                                                          "prefix and set location instead (docs/athena-cost.md).")
    location: Optional[str] = Field(None, pattern=_S3_URI,
                                    description="This table's own s3:// AWSLogs/ folder, when its flow log delivers "
                                                "to a prefix of its own (the flow log's LogDestination with a "
                                                "folder). Default: the source's location.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("format")
    @classmethod
    def _known_fields(cls, v: Optional[str]) -> Optional[str]:
        return known_log_format(v)

    @field_validator("location")
    @classmethod
    def _table_folder(cls, v: Optional[str]) -> Optional[str]:
        return v if v is None or v.endswith("/") else v + "/"

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


def region_names(regions: tuple[str, ...]) -> tuple[str, ...]:
    """``regions`` without repeats; ValueError naming any that is not a region name."""
    bad = [r for r in regions if not re.match(_REGION, r)]
    if bad:
        raise ValueError(f"not region names: {', '.join(bad)}")
    return tuple(dict.fromkeys(regions))


class AwsSettings(Strict):
    profile: Optional[str] = Field(None, description="A named AWS profile; otherwise the standard boto3 credential chain.")
    regions: tuple[str, ...] = Field((), description="Regions to audit.")
    max_parallel: int = Field(4, ge=1, le=64, description="Accounts and regions audited at the same time.")

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return region_names(v)


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
        return None if v is None else region_names(v)

    @model_validator(mode="after")
    def _role_in_account(self) -> AccountSpec:
        if self.role_arn.split(":")[4] != self.id:
            raise ValueError(f"role_arn {self.role_arn} is not in account {self.id}")
        return self


class AthenaSettings(Strict):
    max_bytes_scanned: Optional[Union[int, str]] = Field(
        None, description="A budget for the whole run, in bytes or like '50 GB'. Before each query the bytes "
                          "under its pruned partitions are listed in S3; a query that would go over is skipped.")
    timeout: str = Field("30m", description="Stop a query (StopQueryExecution) that runs longer than this.")
    scratch_database: Optional[str] = Field(
        None, pattern=_NAME, description="The Glue database where each run creates its flow summary table "
                                         "(auditor_flow_summary_<run>_<n>) and drops it at the end. Default: the "
                                         "flow-log source's database.")
    scratch_location: Optional[str] = Field(
        None, pattern=_S3_URI, description="The s3:// prefix under which each run writes its flow summary (Parquet, "
                                           "a folder per run, deleted at the end of the run). Default: "
                                           "auditor-flow-summary/ under the flow-log source's output_location. "
                                           "Put a lifecycle rule on it as the safety net (docs/athena-cost.md).")

    @field_validator("scratch_location")
    @classmethod
    def _scratch_folder(cls, v: Optional[str]) -> Optional[str]:
        return v if v is None or v.endswith("/") else v + "/"

    @field_validator("max_bytes_scanned")
    @classmethod
    def _size(cls, v: Optional[Union[int, str]]) -> Optional[int]:
        return None if v is None else parse_size(v)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v)
        return v


class PricingSettings(Strict):
    athena_usd_per_tb: float = Field(5.0, ge=0, description="Athena price per TB scanned (us-east-1 list price).")
    athena_min_bytes: int = Field(10 * 1000**2, ge=0, description="Athena's minimum billed bytes per query (10 MB).")
    insights_usd_per_gb: float = Field(0.005, ge=0, description="Logs Insights price per GB scanned.")


# --- Logs Insights -------------------------------------------------------------------------------------

# CloudWatch Logs log group names: 1 to 512 of letters, digits and . _ - / #
# (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html).
_LOG_GROUP = r"^[.\-_/#A-Za-z0-9]{1,512}$"


class LogGroupSpec(Strict):
    """One log group of a Logs Insights source. In YAML a bare name is shorthand for ``{name: ...}``."""

    name: str = Field(pattern=_LOG_GROUP, description="The log group's name.")
    format: LogFormat = Field(None, description="The LogFormat of the flow log delivering to this log group (from "
                                                "DescribeFlowLogs). Default: the source's `format`.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_serializer(mode="wrap")
    def _as_written(self, handler: Any) -> Any:
        # A log group without its own format dumps as its bare name, as before log groups took a format: the
        # history's sources key (a hash of the dumped sources) stays the same, and runs keep comparing.
        return self.name if self.format is None else handler(self)


class InsightsSourceSpec(Strict):
    """A flow-log or CloudTrail source in CloudWatch Logs, queried with Logs Insights."""

    engine: Literal["insights"] = Field(description="Query this source with CloudWatch Logs Insights.")
    log_groups: tuple[LogGroupSpec, ...] = Field(
        min_length=1, description="The log groups: a name, or {name, format} when flow logs of different formats "
                                  "deliver to them. At most 50 go into one query; more, or more than one format, "
                                  "are queried in batches and merged.")
    format: LogFormat = Field(None, description="The flow logs' LogFormat (from DescribeFlowLogs), for the "
                                                "generated parse clause, where a log group gives none. Default: "
                                                "the default format, whose fields CloudWatch discovers itself.")

    @field_validator("log_groups")
    @classmethod
    def _unique_groups(cls, v: tuple[LogGroupSpec, ...]) -> tuple[LogGroupSpec, ...]:
        seen: set[str] = set()
        for group in v:
            if group.name in seen:
                raise ValueError(f"log group '{group.name}' is listed twice; list each log group once, with its "
                                 "format")
            seen.add(group.name)
        return v

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.log_groups)

    def group_format(self, group: LogGroupSpec) -> str | None:
        """A log group's LogFormat: its own, else the source's (None: the default format)."""
        return group.format or self.format


class InsightsSettings(Strict):
    max_concurrency: int = Field(4, ge=1, description="Concurrent Logs Insights queries (AWS's quota varies by account).")
    min_slice: str = Field("1h", description="The shortest window slice when a result is truncated at 10,000 rows.")
    timeout: str = Field("15m", description="Stop a query (StopQuery) that runs longer than this.")

    @field_validator("min_slice", "timeout")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)  # raises ValueError: "'x' is not a duration like 90d, 24h, 30m or 2w"
        return v


# --- the evidence archive ------------------------------------------------------------------------------

# S3 bucket naming rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class S3ArchiveSettings(Strict):
    bucket: str = Field(pattern=_BUCKET, description="The archive bucket.")
    prefix: str = Field("auditor/", description="Key prefix of the archive: bundles go under <prefix><suite>/runs/.")
    kms_key_id: Optional[str] = Field(None, description="SSE-KMS key (ID, ARN or alias) that encrypts the objects. "
                                                        "Default: the bucket's default encryption.")
    object_lock_mode: Optional[Literal["GOVERNANCE", "COMPLIANCE"]] = Field(
        None, description="Object Lock mode of every object, when the bucket has Object Lock enabled. "
                          "Default: the bucket's default retention, if any.")
    retain_days: int = Field(365, ge=1, description="Object Lock retain-until, in days from the upload.")

    @field_validator("prefix")
    @classmethod
    def _folder(cls, v: str) -> str:
        v = v.lstrip("/")
        return v if not v or v.endswith("/") else v + "/"


class SigningSettings(Strict):
    method: Literal["none", "ed25519", "hmac", "kms"] = Field(
        "none", description="How manifests, heads and checkpoints are signed: none, ed25519, hmac (HMAC-SHA256) or kms.")
    key_env: Optional[str] = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                   description="The environment variable holding the Ed25519 private key (PEM, or the "
                                               "32-byte seed in base64) or the HMAC secret. Never the key itself.")
    kms_key_id: Optional[str] = Field(None, description="The asymmetric KMS key (SIGN_VERIFY) that signs (method: kms).")

    @model_validator(mode="after")
    def _key_for_method(self) -> SigningSettings:
        if self.method in ("ed25519", "hmac") and not self.key_env:
            raise ValueError(f"signing method {self.method} needs key_env: the environment variable holding the key")
        if self.method == "kms" and not self.kms_key_id:
            raise ValueError("signing method kms needs kms_key_id")
        return self


class ArchiveSettings(Strict):
    dir: Optional[str] = Field(None, description="A local archive folder (relative paths resolve against the config's folder).")
    s3: Optional[S3ArchiveSettings] = Field(None, description="An S3 archive.")
    signing: SigningSettings = Field(default_factory=SigningSettings, description="Manifest signatures.")
    keep_runs: Optional[int] = Field(None, ge=1, description="Local retention: keep this many runs per suite, prune "
                                                             "older ones behind a signed checkpoint. S3 is never pruned.")

    @model_validator(mode="after")
    def _a_target(self) -> ArchiveSettings:
        if self.dir is None and self.s3 is None:
            raise ValueError("archive needs a target: dir (a local folder), s3 (a bucket), or both")
        return self


# A suite's name names files (state_dir/suites/<name>.json and .lock), archive folders and keys, and goes into
# mail headers: a safe slug only (no "/", "..", spaces or line breaks). \Z, not $: $ also matches before a final "\n".
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


# --- suites, the scheduler and email -------------------------------------------------------------------

# What a subject template may name; each is a plain value (no attribute or index access).
SUBJECT_FIELDS = ("title", "suite", "since", "until", "findings", "critical", "high", "medium", "low", "info",
                  "new", "escalated", "de_escalated", "resolved", "errors", "no_data", "run_id", "window",
                  "compared_with")
DEFAULT_SUBJECT = "[auditor] {title}, {window}: {high} high, {new} new"

# cron numbers days of the week from Sunday=0 (7 is Sunday too); these are its names for 0..7.
_CRON_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# fullmatch, never match with `$`: `$` also matches before a final newline, and an address ending in "\n" would
# end the mail's header block early (the Subject, the MIME headers and the PDF would become body text).
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


def _address(value: str, what: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not an e-mail address like ops@example.com")
    return value


class SuiteSpec(Strict):
    """A report suite: which checks, when, over which window, to whom."""

    schedule: str = Field(description="A cron expression (minute hour day month day-of-week), read in `timezone`; "
                                      "days of the week by name (mon-fri), never by number.")
    timezone: str = Field("UTC", description="The IANA time zone the schedule is read in, e.g. Europe/Berlin.")
    title: Optional[str] = Field(None, max_length=120, description="The report's name in the subject and the mail; "
                                                                   "default: the suite's name.")
    checks: Optional[tuple[str, ...]] = Field(None, description="The checks to run; default: every configured check.")
    window_days: int = Field(7, ge=1, le=366, description="The window: the last N whole UTC days before the run.")
    recipients: tuple[str, ...] = Field((), description="Who gets the report and the failure notices.")
    send: Literal["always", "on_change", "on_findings"] = Field(
        "always", description="When to mail: always; on_change (a finding is new or resolved); on_findings (any "
                              "active finding). A run with an errored check is always mailed.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        check_cron(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}{did_you_mean(v, available_timezones())}; "
                             "use an IANA name such as UTC or Europe/Berlin") from None
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(r, "recipient") for r in v)

    @field_validator("title")
    @classmethod
    def _one_line(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and ("\n" in v or "\r" in v):
            raise ValueError("the title goes into the subject line: it must be one line")
        return v


def check_cron(expr: str) -> None:
    """Raise ValueError unless ``expr`` is a five-field cron that APScheduler 3 reads the way cron does.

    Two places where APScheduler 3's CronTrigger differs from cron are refused rather than guessed:
    - day-of-week numbers: APScheduler 3 counts Monday as 0, cron counts Sunday as 0, so ``0 6 * * 1`` would
      fire on Tuesdays (https://apscheduler.readthedocs.io/en/3.x/modules/triggers/cron.html, and the warning
      on ``CronTrigger.from_crontab``);
    - a restricted day of month *and* day of week: cron fires when either matches, APScheduler when both do.
    """
    # APScheduler is imported here, not at the top: it pulls in SQLAlchemy, which only the scheduler needs.
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} has {len(fields)} fields; a cron schedule has 5: minute hour day month day-of-week "
                         "(for example '0 6 * * mon')")
    minute, hour, day, month, dow = fields
    if any(ch.isdigit() for ch in dow):
        names = _dow_names(dow)
        fix = " ".join([minute, hour, day, month, names]) if names else None
        hint = f"; write {fix!r}" if fix else "; write days by name: mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri"
        raise ValueError(f"day of week {dow!r} is a number: cron counts Sunday as 0 but APScheduler 3 counts Monday as 0, "
                         f"so it would fire on the wrong day{hint}")
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError(f"{expr!r} restricts both the day of month ({day}) and the day of week ({dow}): cron fires "
                         "when either matches, APScheduler 3 only when both do; set one of them to '*' "
                         "(or use two suites)")
    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{expr!r} is not a valid schedule: {exc}") from None


def _dow_names(field: str) -> str | None:
    """A numeric cron day-of-week field as names (cron's meaning: 0 and 7 are Sunday), or None if unreadable."""
    days: set[int] = set()  # 0 = mon .. 6 = sun
    for part in field.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if not m:
            return None
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if start == "*":
            lo, hi = 0, 6
        else:
            lo = int(start)
            hi = int(end) if end is not None else (7 if m.group(3) else lo)
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            return None
        for n in range(lo, hi + 1, step):
            days.add(_WEEK.index(_CRON_DAY_NAMES[n]))
    return _compress(sorted(days))


def _compress(days: list[int]) -> str:
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts = [(_WEEK[r[0]] if len(r) == 1 else f"{_WEEK[r[0]]}-{_WEEK[r[-1]]}") for r in runs]
    return ",".join(parts)


class SmtpSettings(Strict):
    host: str = Field(description="SMTP server host.")
    port: Optional[int] = Field(None, ge=1, le=65535, description="SMTP port; default 587 for starttls, 465 for tls, "
                                                                  "25 for none.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (RFC 3207, usually port 587), tls (implicit TLS, RFC 8314, usually 465) "
                                "or none.")
    username_env: Optional[str] = Field(None, description="The environment variable holding the SMTP user name "
                                                          "(never the value itself).")
    password_env: Optional[str] = Field(None, description="The environment variable holding the SMTP password.")
    ca_file: Optional[Path] = Field(None, description="A PEM file of CA certificates that the SMTP server's "
                                                      "certificate is verified against (a private CA), instead of the "
                                                      "system's; relative to the config's folder.")

    @field_validator("username_env", "password_env")
    @classmethod
    def _env_name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not an environment variable name (name the variable, do not paste its value)")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSettings:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("set both username_env and password_env, or neither")
        if self.username_env is not None and self.security == "none":
            raise ValueError("security: none would send the SMTP password in clear text; use starttls or tls")
        if self.ca_file is not None and self.security == "none":
            raise ValueError("ca_file is for TLS, but security is none: set security: starttls or tls")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class EmailSettings(Strict):
    transport: Literal["smtp", "ses"] = Field("smtp", description="How mail is sent: smtp, or ses (Amazon SES "
                                                                  "SendRawEmail, with the standard boto3 credentials).")
    sender: str = Field("auditor@localhost", description="The From address (for SES, a verified identity).")
    smtp: Optional[SmtpSettings] = Field(None, description="SMTP settings (transport: smtp).")
    ses_region: Optional[str] = Field(None, description="The SES region (transport: ses); default: the boto3 "
                                                        "default region.")
    subject: str = Field(DEFAULT_SUBJECT, description="The subject template. Fields: "
                                                      + ", ".join(f"{{{f}}}" for f in SUBJECT_FIELDS) + ".")
    max_bytes: int = Field(10 * 1000**2, ge=1000, description="Largest encoded message; over it the PDF is linked, "
                                                              "not attached. Default: SES's 10 MB limit.")
    pdf_link_expiry: str = Field("7d", description="How long the presigned S3 link to an archived PDF that was too "
                                                   "large to attach lives (at most 7d, SigV4's limit).")
    attempts: int = Field(3, ge=1, le=10, description="Tries per message before the delivery counts as failed.")
    retry_backoff: str = Field("10s", description="The wait before the second try; it doubles for each further try.")

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        return _address(v, "sender")

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str) -> str:
        if "\n" in v or "\r" in v:
            raise ValueError("the subject must be one line")
        try:
            parts = list(string.Formatter().parse(v))
        except ValueError as exc:
            raise ValueError(f"the subject template {v!r} is malformed: {exc} (write a literal brace as {{{{ or }}}})") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in SUBJECT_FIELDS:
                raise ValueError(f"unknown subject field {{{name}}}{did_you_mean(name, SUBJECT_FIELDS)}; "
                                 f"known: {', '.join(SUBJECT_FIELDS)}")
            if conversion or (spec and not re.fullmatch(r"[<>^]?\d*", spec)):
                raise ValueError(f"subject field {{{name}}}: only a width/alignment like {{{name}:>3}} is allowed")
        return v

    @field_validator("retry_backoff")
    @classmethod
    def _backoff(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("pdf_link_expiry")
    @classmethod
    def _link_expiry(cls, v: str) -> str:
        # A SigV4 presigned URL lives at most 7 days:
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html
        lifetime = parse_duration(v)
        if not timedelta(minutes=1) <= lifetime <= timedelta(days=7):
            raise ValueError(f"pdf_link_expiry {v!r}: a presigned S3 link lives from 1m to 7d (SigV4's limit)")
        return v

    @model_validator(mode="after")
    def _transport_settings(self) -> EmailSettings:
        if self.transport == "smtp" and self.smtp is None:
            raise ValueError("transport: smtp needs an smtp: {host: ...} section")
        return self


class ScheduleSettings(Strict):
    misfire_grace: str = Field("6h", description="A run missed while the host was down runs once on restart within "
                                                 "this time; later than that, the recipients get a failure notice.")
    heartbeat_url: Optional[str] = Field(None, description="A URL pinged (GET) after each successful delivered run.")

    @field_validator("misfire_grace")
    @classmethod
    def _grace(cls, v: str) -> str:
        if parse_duration(v).total_seconds() < 1:
            raise ValueError("misfire_grace must be at least 1s")
        return v

    @field_validator("heartbeat_url")
    @classmethod
    def _url(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.match(r"^https?://[^\s]+$", v):
            raise ValueError(f"heartbeat_url {v!r} must be an http:// or https:// URL")
        return v


# --- the whole file ------------------------------------------------------------------------------------

# AWS Security Hub control EC2.19 "Security groups should not allow unrestricted access to ports with high risk"
# (https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-19).
SECURITY_HUB_EC2_19_PORTS = (20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000,
                             5432, 5500, 5601, 8080, 8088, 8888, 9200, 9300)
# Ours, on top of EC2.19: NetBIOS 137-139 (in AWS Config's restricted-common-ports family), Oracle 1521,
# the unauthenticated Docker API 2375, VNC 5900, Redis 6379, memcached 11211 and MongoDB 27017: services that
# are routinely found open and abused on the internet. See docs/config-guide.md, "Sensitive ports".
EXTRA_SENSITIVE_PORTS = (137, 138, 139, 1521, 2375, 5900, 6379, 11211, 27017)
DEFAULT_SENSITIVE_PORTS = tuple(sorted(set(SECURITY_HUB_EC2_19_PORTS + EXTRA_SENSITIVE_PORTS)))


class SourceSpec(Strict):
    """One input read by the local engine. In YAML a bare string is shorthand for ``{path: ...}``."""

    engine: Literal["local"] = Field("local", description="Read this source with the local engine (DuckDB over files).")
    path: Path = Field(description="A file or a directory of any depth. Relative paths resolve against the config "
                                   "file's folder.")


class FlowLogSourceSpec(SourceSpec):
    format: LogFormat = Field(None, description="The AWS LogFormat (`${version} ${account-id} ...`) of header-less "
                                                "files such as CloudWatch exports. Default: the v2 default format.")


def source_engine(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("engine", "local"))
    return str(getattr(data, "engine", "local"))


# A source is a path (the local engine) or a mapping whose `engine:` picks its model; a source without
# `engine:` takes the top-level engine (see Config._default_source_engine).
FlowLogSource = Annotated[Union[Annotated[FlowLogSourceSpec, Tag("local")], Annotated[AthenaSourceSpec, Tag("athena")],
                                Annotated[InsightsSourceSpec, Tag("insights")]], Discriminator(source_engine)]
CloudTrailSource = Annotated[Union[Annotated[SourceSpec, Tag("local")], Annotated[AthenaSourceSpec, Tag("athena")],
                                   Annotated[InsightsSourceSpec, Tag("insights")]], Discriminator(source_engine)]
InventorySource = Annotated[Union[Annotated[SourceSpec, Tag("local")], Annotated[AwsApiInventorySpec, Tag("aws_api")]],
                            Discriminator(source_engine)]


class Sources(Strict):
    flow_logs: Optional[FlowLogSource] = Field(None, description="VPC Flow Logs in the layout AWS writes to S3: "
                                                                 "text (.log, .log.gz) or Parquet.")
    cloudtrail: Optional[CloudTrailSource] = Field(None, description="CloudTrail: S3 log files (AWSLogs/<account>/CloudTrail/...), "
                                                                     "JSON arrays, JSON Lines or CloudWatch exports.")
    inventory: Optional[InventorySource] = Field(None, description="EC2 inventory: AWS CLI JSON of describe-security-groups, "
                                                                   "describe-security-group-rules and describe-network-interfaces "
                                                                   "(optionally describe-network-acls, for nacl_changes), "
                                                                   "or {engine: aws_api} to read it live through the EC2 API.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({"path": v} if isinstance(v, (str, Path)) else v) for k, v in data.items()}
        return data


class ExceptionSpec(Strict):
    """A suppression: findings of one check whose key columns match are listed as suppressed."""

    check: str = Field(description="The check ID.")
    match: dict[str, Any] = Field(description="Key columns and the values they must equal, e.g. {dstport: 22, interface_id: eni-1}.")
    owner: str = Field(min_length=1, description="Who answers for the exception.")
    reason: str = Field(min_length=1, description="Why the finding is accepted.")
    expires: date = Field(description="The last day the exception applies (YYYY-MM-DD).")


class CacheSettings(Strict):
    enabled: bool = Field(False, description="Keep a day-partitioned Parquet copy of the raw flow logs and reuse it.")
    dir: Optional[Path] = Field(None, description="Where the cache lives. Default: <state_dir>/cache.")


class WindowSpec(Strict):
    since: Optional[str] = Field(None, description="Default start: ISO 8601, a date, or relative (7d).")
    until: Optional[str] = Field(None, description="Default end: ISO 8601, a date, or relative (24h).")

    @model_validator(mode="before")
    @classmethod
    def _stringify(cls, data: Any) -> Any:
        # YAML turns 2026-11-09 into a date; keep the user's meaning by formatting it back.
        if isinstance(data, dict):
            return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}
        return data


# DuckDB's memory sizes: a number and a unit, 1000-based (KB..TB) or 1024-based (KiB..TiB), or a share of RAM.
_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)\s*$", re.I)


class DuckDBSettings(Strict):
    memory_limit: Optional[str] = Field(None, description="DuckDB memory limit, e.g. '4GB'. Default: DuckDB's (80% of RAM).")
    temp_directory: Optional[Path] = Field(None, description="Where DuckDB spills when over the memory limit.")
    threads: Optional[int] = Field(None, ge=1, description="DuckDB worker threads. Default: one per core.")

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        m = _MEMORY.match(str(v))
        if m is None:
            raise ValueError(f"'{v}' is not a memory size: write a number and a unit, like 4GB, 600MB or 8GiB")
        number, unit = float(m.group(1)), m.group(2)
        if number <= 0 or (unit == "%" and number > 100):
            raise ValueError(f"'{v}' is no memory DuckDB can run in: give a positive size, or a share up to 100%")
        return v


class ReportSettings(Strict):
    """How the report prints."""

    appendix: Literal["table", "full"] = Field(
        "table", description="The printed appendix of queries: table (one row per query as run, with its parameters, "
        "duration, bytes, rows and SHA-256; the full SQL is attached to the PDF as queries.sql and folded in the HTML) "
        "or full (the full SQL text printed too, for auditors who want it on paper).")


class Config(Strict):
    """The whole of ``config.yaml``."""

    engine: str = Field("local", description="The engine that runs the checks: local (DuckDB over files).")
    sources: Sources = Field(default_factory=Sources, description="Where the inputs are. A missing source skips the checks that need it.")
    checks: Optional[dict[str, dict[str, Any]]] = Field(
        None, description="Which checks run, with their parameters. Absent means every built-in check with its defaults.")
    window: Optional[WindowSpec] = Field(None, description="Default window when neither --since nor --until is given.")
    sensitive_ports: tuple[int, ...] = Field(DEFAULT_SENSITIVE_PORTS, description="Ports whose exposure is high severity. "
                                             "Default: Security Hub EC2.19's list plus 137-139, 1521, 2375, 5900, 6379, 11211, 27017.")
    delivery_lag: str = Field("1d", description="How long after a record starts it may still be delivered. Widens file pruning "
                                                "past the window's end, and warns when the window ends later than now minus this.")
    output_dir: Path = Field(Path("reports"), description="Where runs without --out write reports/<date>-<run id>/.")
    table_limit: int = Field(50, ge=1, le=1000, description="Rows per table in the HTML/PDF report; the CSV holds all rows.")
    report: ReportSettings = Field(default_factory=ReportSettings, description="How the report prints (its appendix).")
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings, description="Resources of the embedded DuckDB.")
    state_dir: Path = Field(Path(".auditor"), description="Run records, history and other state, beside the config. "
                                                         "Never inside the reports folder.")
    templates_dir: Optional[Path] = Field(None, description="A folder of templates that override the built-in ones "
                                                            "(check-<id>.html, check.html, report.html, print.css).")
    exceptions: tuple[ExceptionSpec, ...] = Field((), description="Suppressions, each with an owner, a reason and an expiry.")
    cache: CacheSettings = Field(default_factory=CacheSettings, description="The optional Parquet cache of raw flow logs.")
    aws: AwsSettings = Field(default_factory=AwsSettings, description="AWS profile and regions for the AWS engines.")
    accounts: tuple[AccountSpec, ...] = Field((), description="Accounts to audit through assumed roles.")
    pricing: PricingSettings = Field(default_factory=PricingSettings, description="Prices used to estimate query costs.")
    insights: InsightsSettings = Field(default_factory=InsightsSettings, description="Limits of the Logs Insights engine.")
    athena: AthenaSettings = Field(default_factory=AthenaSettings, description="The Athena engine's scan budget and timeout.")
    suites: dict[str, SuiteSpec] = Field(default_factory=dict, description="Scheduled report suites by name.")
    email: Optional[EmailSettings] = Field(None, description="How reports are mailed.")
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings, description="The scheduler daemon's settings.")
    archive: Optional[ArchiveSettings] = Field(None, description="Where run evidence is archived.")

    @model_validator(mode="before")
    @classmethod
    def _defaultsource_engine(cls, data: Any) -> Any:
        return with_source_engines(data)


    @field_validator("suites", mode="before")
    @classmethod
    def _suite_names(cls, v: Any) -> Any:
        for name in v if isinstance(v, dict) else ():
            if not (isinstance(name, str) and SUITE_NAME.match(name)):
                raise ValueError(f"suite name {str(name)!r}: use a slug of letters, digits, '.', '_' and '-', starting "
                                 "with a letter or digit, at most 64 characters (it names state files, archive "
                                 "folders and a mail header)")
        return v

    @field_validator("sensitive_ports")
    @classmethod
    def _ports(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [p for p in v if not 0 <= p <= 65535]
        if bad:
            raise ValueError(f"ports must be 0..65535, got {bad}")
        return tuple(sorted(set(v)))

    @field_validator("delivery_lag")
    @classmethod
    def _lag(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def delivery_lag_td(self) -> timedelta:
        return parse_duration(self.delivery_lag)


def with_source_engines(data: Any) -> Any:
    """A source mapping without ``engine:`` (and without ``path:``) takes the top-level engine."""
    if not (isinstance(data, dict) and isinstance(data.get("sources"), dict) and data.get("engine", "local") != "local"):
        return data
    sources = {}
    for name, value in data["sources"].items():
        if isinstance(value, dict) and "engine" not in value and "path" not in value and name != "inventory":
            value = {**value, "engine": data["engine"]}
        sources[name] = value
    return {**data, "sources": sources}
