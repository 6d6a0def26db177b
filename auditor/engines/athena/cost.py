"""What Athena queries cost, the run's scan budget, and the S3 listing that estimates a query's scan.

Athena bills the bytes it reads from S3 (compressed bytes for gzip text, only the columns read for Parquet),
rounded up to the megabyte, with a 10 MB minimum per query, at $5 per TB in us-east-1
(https://aws.amazon.com/athena/pricing/). Prices come from ``pricing:`` in the config; a TB is 10^12 bytes here.

The budget is an estimate made before each query: the size of the objects under the partitions the query
reads after pruning. For text flow logs and CloudTrail that is what Athena will scan; for Parquet it is an
upper bound, since Athena reads only the columns it needs. The hard stop belongs to the workgroup:
BytesScannedCutoffPerQuery cancels any query that scans more
(https://docs.aws.amazon.com/athena/latest/ug/workgroups-setting-control-limits-cloudwatch.html).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from auditor.config import PricingSettings
from auditor.engines.athena.querymap import PartitionScan
from auditor.errors import EngineError

MB = 1000**2
TB = 1000**4


def billed_bytes(scanned: int, pricing: PricingSettings) -> int:
    """The bytes Athena bills for a query that scanned ``scanned``: rounded up to the MB, at least the minimum."""
    return max(pricing.athena_min_bytes, math.ceil(max(scanned, 0) / MB) * MB)


def cost_usd(scanned: int, pricing: PricingSettings) -> float:
    """The estimated cost of one query, in US dollars."""
    return billed_bytes(scanned, pricing) * pricing.athena_usd_per_tb / TB


@dataclass(frozen=True)
class Estimate:
    bytes: int
    objects: int
    prefixes: int


def _bucket_key(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _list(s3: Any, bucket: str, prefix: str, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
    kwargs = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    try:
        yield from s3.get_paginator("list_objects_v2").paginate(**kwargs)
    except Exception as exc:  # botocore ClientError and friends; the message names the bucket
        raise EngineError(f"could not list s3://{bucket}/{prefix} to estimate the scan: {exc}", engine="athena") from exc


def _children(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The folder names directly under ``prefix``."""
    names = []
    for page in _list(s3, bucket, prefix, "/"):
        for cp in page.get("CommonPrefixes", []):
            names.append(cp["Prefix"][len(prefix):].rstrip("/"))
    return names


def _day_folders(scan: PartitionScan, day: date) -> str:
    if scan.hive:
        return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}/"


def _prefixes(s3: Any, scan: PartitionScan) -> Iterable[tuple[str, str]]:
    """(bucket, key prefix) of every pruned day folder, listing account and region folders when unknown."""
    bucket, root = _bucket_key(scan.location)
    if scan.hive:
        accounts = [scan.account] if scan.account else [
            c.split("=", 1)[1] for c in _children(s3, bucket, root) if c.startswith("aws-account-id=")]
        for account in accounts:
            base = f"{root}aws-account-id={account}/aws-service={scan.service.lower()}/"
            regions = [scan.region] if scan.region else [
                c.split("=", 1)[1] for c in _children(s3, bucket, base) if c.startswith("aws-region=")]
            for region in regions:
                for day in scan.days:
                    yield bucket, f"{base}aws-region={region}/{_day_folders(scan, day)}"
        return
    accounts = [scan.account] if scan.account else _children(s3, bucket, root)
    for account in accounts:
        base = f"{root}{account}/{scan.service}/"
        regions = [scan.region] if scan.region else _children(s3, bucket, base)
        for region in regions:
            for day in scan.days:
                yield bucket, f"{base}{region}/{_day_folders(scan, day)}"


@dataclass(frozen=True)
class Listing:
    """The objects under one scan's pruned partitions: (bucket, key) -> size, and how many prefixes were listed."""

    objects: Mapping[tuple[str, str], int]
    prefixes: int


def list_scan(s3: Any, scan: PartitionScan) -> Listing:
    """Every object under the pruned partitions of ``scan`` (an S3 listing; no object is read)."""
    objects: dict[tuple[str, str], int] = {}
    prefixes = 0
    for bucket, prefix in _prefixes(s3, scan):
        prefixes += 1
        for page in _list(s3, bucket, prefix):
            for obj in page.get("Contents", []):
                objects[(bucket, obj["Key"])] = int(obj.get("Size", 0))
    return Listing(objects=objects, prefixes=prefixes)


def own_objects(scan: PartitionScan, listing: Listing) -> dict[tuple[str, str], int]:
    """The objects of a listing that hold the scan's own records: all of them, or those of its flow log IDs."""
    if not scan.flow_log_ids:
        return dict(listing.objects)
    return {k: size for k, size in listing.objects.items()
            if any(f"_{fid}_" in k[1].rsplit("/", 1)[-1] for fid in scan.flow_log_ids)}


def estimate_scan(s3: Any, scans: Iterable[PartitionScan],
                  listings: Mapping[PartitionScan, Listing] | None = None) -> Estimate:
    """What a query over ``scans`` reads: every object under their pruned partitions (an S3 listing; no object is
    read). Every object under a scan's day folders counts, even for a table restricted to some flow logs: the
    ``strpos("$path", ...)`` restriction filters rows after the files are read, because Athena prunes files only
    through partitions (https://docs.aws.amazon.com/athena/latest/ug/partitions.html). Two per-format tables over
    the same folders each read all of them, and the estimate counts both. ``listings`` holds scans already
    listed."""
    total = objects = prefixes = 0
    for scan in scans:
        listing = (listings or {}).get(scan) or list_scan(s3, scan)
        total += sum(listing.objects.values())
        objects += len(listing.objects)
        prefixes += listing.prefixes
    return Estimate(bytes=total, objects=objects, prefixes=prefixes)
