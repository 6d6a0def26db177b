"""Finding input files in the layout AWS writes to S3, and pruning them by window.

Flow logs: ``AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/[HH/]`` or, for Parquet with Hive-compatible
prefixes, ``.../aws-account-id=<account>/aws-service=vpcflowlogs/aws-region=<region>/year=YYYY/month=MM/day=DD/hour=HH/``
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html).
CloudTrail: ``AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/``
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html).

S3 folders are dated by *delivery* time, so a record that started at 23:58 can sit in the next day's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from auditor.errors import InputError
from auditor.models import InputFile, TimeWindow

_DATED = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})(?:/(\d{2}))?(?=/)")
_HIVE = re.compile(r"(?:^|/)year=(\d{4})/month=(\d{1,2})/day=(\d{1,2})(?:/hour=(\d{1,2}))?(?=/)")
_S3_ACCOUNT_REGION = re.compile(
    r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/(?:vpcflowlogs|CloudTrail|CloudTrail-Insight)/([a-z0-9-]+)/", re.I)
_HIVE_ACCOUNT = re.compile(r"aws-account-id=(\d{12})/")
_HIVE_REGION = re.compile(r"aws-region=([a-z0-9-]+)/")
_PLAIN_ACCOUNT_REGION = re.compile(r"(?:^|/)(\d{12})/([a-z]{2}(?:-gov)?-[a-z]+-\d)/")

TEXT_SUFFIXES = (".log", ".log.gz", ".txt", ".txt.gz", ".gz")
PARQUET_SUFFIXES = (".parquet",)
JSON_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


def classify(name: str) -> str | None:
    """The kind of a file by its name: ``parquet``, ``json``, ``text``, or None for anything else."""
    low = name.lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(JSON_SUFFIXES):
        return "json"
    if low.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def describe(path: str | os.PathLike[str], size: int | None = None) -> InputFile | None:
    """What a path says about a file: kind, folder date, account and region. None for unknown kinds."""
    p = Path(path)
    kind = classify(p.name)
    if kind is None:
        return None
    posix = p.as_posix()
    folder_time, span = _folder_time(posix)
    account, region = _account_region(posix)
    return InputFile(path=str(p), size=p.stat().st_size if size is None else size, kind=kind,
                     folder_time=folder_time, folder_span=span, account_id=account, region=region)


def _folder_time(posix: str) -> tuple[datetime | None, timedelta | None]:
    # The last dated segment wins: a prefix may itself contain digits that look like a date.
    matches = list(_HIVE.finditer(posix)) or list(_DATED.finditer(posix))
    for m in reversed(matches):
        y, mo, d, h = m.groups()
        try:
            if h is not None:
                return datetime(int(y), int(mo), int(d), int(h), tzinfo=timezone.utc), timedelta(hours=1)
            return datetime(int(y), int(mo), int(d), tzinfo=timezone.utc), timedelta(days=1)
        except ValueError:
            continue  # 2026/13/45 is no date; treat the file as undated rather than guess
    return None, None


def _account_region(posix: str) -> tuple[str | None, str | None]:
    m = _S3_ACCOUNT_REGION.search(posix)
    if m:
        return m.group(1), m.group(2)
    acct, reg = _HIVE_ACCOUNT.search(posix), _HIVE_REGION.search(posix)
    if acct or reg:
        return (acct.group(1) if acct else None), (reg.group(1) if reg else None)
    m = _PLAIN_ACCOUNT_REGION.search(posix)  # the inventory's <account>/<region>/ folders
    if m:
        return m.group(1), m.group(2)
    return None, None


def discover(root: str | os.PathLike[str], kinds: Iterable[str], *, skip_dirs: Iterable[str] = ()) -> list[InputFile]:
    """Every file of the given kinds under ``root`` (a file or a directory of any depth), sorted by path.

    Hidden files and folders and the folders named in ``skip_dirs`` are passed over.
    """
    rootp = Path(root)
    wanted, skipped = set(kinds), set(skip_dirs)
    if not rootp.exists():
        raise InputError(f"{rootp}: no such file or directory")
    if rootp.is_file():
        f = describe(rootp)
        if f is None or f.kind not in wanted:
            raise InputError(f"{rootp}: not a {' or '.join(sorted(wanted))} file (by its name)")
        return [f]
    found: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(rootp):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in skipped)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            f = describe(Path(dirpath) / name)
            if f is not None and f.kind in wanted:
                found.append(f)
    return found


def may_hold(f: InputFile, window: TimeWindow, delivery_lag: timedelta) -> bool:
    """Whether a file's delivery folder can hold records that started inside ``window``.

    A folder dated D holds records delivered during D's span. Records start before they are delivered,
    and are delivered at most ``delivery_lag`` after they start. So a folder can hold window records
    only when it ends after ``since`` and starts before ``until + delivery_lag``. Undated paths are
    never pruned.
    """
    if f.folder_time is None or f.folder_span is None:
        return True
    return f.folder_time + f.folder_span > window.since and f.folder_time < window.until + delivery_lag


def prune(files: Iterable[InputFile], window: TimeWindow, delivery_lag: timedelta) -> list[InputFile]:
    """The files whose folder date can hold records of ``window`` (see :func:`may_hold`)."""
    return [f for f in files if may_hold(f, window, delivery_lag)]
