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
import zlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from auditor.errors import InputError
from auditor.models import FileQuality, InputFile, TimeWindow

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


def discover(root: str | os.PathLike[str], kinds: Iterable[str], *, skip_dirs: Iterable[str] = (),
             problems: list[FileQuality] | None = None) -> list[InputFile]:
    """Every file of the given kinds under ``root`` (a file or a directory of any depth), in walk order: a
    folder's files by name, then its subfolders by name.

    Hidden files and folders and the folders named in ``skip_dirs`` are passed over. Symbolic links are
    followed, each real folder and file once: a link that leads back to a folder being walked is a loop, and
    a link to a folder or file already found is not read again. A folder that cannot be listed, a broken
    link and a loop are *problems*: appended to ``problems`` as a :class:`FileQuality` naming the path and
    the reason, and the walk goes on. Without a ``problems`` list, the first one raises InputError.
    """
    rootp = Path(root)
    wanted, skipped = set(kinds), set(skip_dirs)
    if not rootp.exists():
        raise InputError(f"{rootp}: no such file or directory")
    if not rootp.is_dir():
        if not rootp.is_file():
            raise InputError(f"{rootp}: not a regular file or a folder (a FIFO, socket or device)")
        f = describe(rootp)
        if f is None or f.kind not in wanted:
            raise InputError(f"{rootp}: not a {' or '.join(sorted(wanted))} file (by its name)")
        return [f]
    found: list[InputFile] = []
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: dict[tuple[int, int], str] = {}

    def problem(path: str, reason: str) -> None:
        if problems is None:
            raise InputError(f"{path}: {reason}")
        problems.append(FileQuality(path=path, error=reason))

    # Depth first, a folder's files before its subfolders. Each entry carries the real folders above it,
    # which is how a loop is told from a second link to a folder read already.
    stack: list[tuple[str, tuple[tuple[int, int], ...]]] = [(str(rootp), ())]
    while stack:
        folder, above = stack.pop()
        try:
            st = os.stat(folder)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problem(folder, f"cannot list the folder: {_reason(e)}")
            continue
        here = (st.st_dev, st.st_ino)
        if here in above:
            problem(folder, f"symbolic link loop: it leads back to {seen_dirs[here]}, which is being read already")
            continue
        if here in seen_dirs:
            continue  # a second link to a folder already read: its files are counted once
        seen_dirs[here] = folder
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
                target = entry.stat() if entry.is_symlink() else None
            except OSError as e:
                problem(entry.path, f"broken symbolic link: {_reason(e)}")
                continue
            if is_dir:
                if entry.name not in skipped:
                    subfolders.append(entry.path)
                continue
            kind = classify(entry.name)
            if kind not in wanted:
                continue
            if not entry.is_file():
                # A FIFO would block the reader for ever, a socket cannot be opened: named, never read.
                problem(entry.path, "not a regular file (a FIFO, socket or device); it was not read")
                continue
            st_file = target or entry.stat()
            identity = (st_file.st_dev, st_file.st_ino)
            if identity in seen_files:
                continue  # the same file through another link
            seen_files.add(identity)
            f = describe(entry.path, size=st_file.st_size)
            if f is not None:
                found.append(f)
        stack.extend((sub, above + (here,)) for sub in reversed(subfolders))
    return found


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def read_salvaging(path: str | os.PathLike[str], *, gzip_by_name: bool = True) -> tuple[bytes, str | None]:
    """A file's bytes, gunzipped when they start with the gzip magic, and why they are not the whole file's
    content, or None.

    A truncated or corrupt gzip stream keeps what decompressed before the damage. With ``gzip_by_name``, a
    file named ``.gz`` that is no gzip stream yields nothing (a reader that goes by the name could not read it
    either). Raises OSError when the file cannot be opened or read.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    named_gz = gzip_by_name and os.fspath(path).lower().endswith(".gz")
    if data[:2] != b"\x1f\x8b":
        if not named_gz:
            return data, None
        if not data:
            return b"", "empty file (0 bytes): not a gzip stream, although its name ends in .gz"
        return b"", "not a gzip stream, although its name ends in .gz"
    out: list[bytes] = []
    rest = data
    while rest:
        # A gzip file may hold several members one after another; each starts with the magic bytes.
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(rest))
        except zlib.error as e:
            out.append(_flushed(d))
            return b"".join(out), f"corrupt gzip stream ({e}); the lines before the damage were read"
        if not d.eof:
            out.append(_flushed(d))
            return b"".join(out), "truncated gzip stream: it ends early; the lines before the cut were read"
        rest = d.unused_data
        if rest and rest[:2] != b"\x1f\x8b":
            if rest.strip(b"\x00"):
                return b"".join(out), f"{len(rest)} bytes of trailing garbage after the gzip stream were ignored"
            break
    return b"".join(out), None


def _flushed(d: zlib._Decompress) -> bytes:
    try:
        return d.flush()
    except zlib.error:
        return b""


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
