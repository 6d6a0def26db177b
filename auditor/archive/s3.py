"""The S3 archive: the same layout as the local folder under ``<prefix>``, plus ``<prefix><suite>/HEAD.json``.

Every object is written with:
- its SHA-256 as the S3 checksum, so S3 rejects an upload corrupted on the way
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html);
- SSE-KMS when a key is configured
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html);
- Object Lock retention (mode and retain-until) when the bucket has Object Lock enabled. Object Lock
  needs a versioned bucket, so an overwrite or a plain delete only adds a version or a delete marker,
  and a locked version cannot be deleted before its retain-until date
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html).

The client is injected (made by :class:`auditor.aws.AwsSessions` when the caller has none).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auditor.aws import error_code, is_client_error
from auditor.errors import UsageError

_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, "prefix/"); the prefix may be empty."""
    m = _URL.match(url)
    if m is None:
        raise UsageError(f"{url}: not an s3://bucket/prefix URL")
    prefix = (m.group(2) or "").lstrip("/")
    return m.group(1), (prefix if not prefix or prefix.endswith("/") else prefix + "/")


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    last_modified: datetime
    is_latest: bool
    delete_marker: bool


class S3Store:
    """Read access to an S3 archive, for verify and for reading the S3 head."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        # Object Lock mode and retain-until of every object read: GetObject returns the same lock headers as
        # HeadObject (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html), so verify learns
        # each object's retention without a second request.
        self.locks: dict[str, tuple[str | None, datetime | None]] = {}

    def describe(self, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{rel}"

    def list(self) -> list[str]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            out.extend(o["Key"][len(self.prefix):] for o in page.get("Contents", ()))
        return sorted(out)

    def read(self, rel: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)
        except Exception as exc:
            if is_client_error(exc) and error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        self.locks[rel] = (response.get("ObjectLockMode"), response.get("ObjectLockRetainUntilDate"))
        return response["Body"].read()

    def versions(self, rel: str) -> list[ObjectVersion]:
        """The versions of one key, oldest first (delete markers left out).

        S3 lists the versions of a key in the order they were stored, newest first
        (https://docs.aws.amazon.com/AmazonS3/latest/userguide/list-obj-version-enabled-bucket.html); that order
        is used rather than LastModified, which ties for writes within one second."""
        key = self.prefix + rel
        found: list[ObjectVersion] = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for v in page.get("Versions", ()):
                if v["Key"] == key:
                    found.append(ObjectVersion(key, v.get("VersionId"), v["LastModified"], v.get("IsLatest", False), False))
        return found[::-1]

    def read_version(self, rel: str, version_id: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel, VersionId=version_id)["Body"].read()

    def retention(self, rel: str) -> tuple[str | None, datetime | None]:
        """Object Lock mode and retain-until of the current version. Read through HeadObject: it returns
        both, and moto answers GetObjectRetention with a 500."""
        head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + rel)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    def lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock enabled
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectLockConfiguration.html)."""
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception as exc:
            if is_client_error(exc) and error_code(exc) == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


class S3Target(S3Store):
    """Write access to an S3 archive."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, kms_key_id: str | None = None,
                 lock_mode: str | None = None, retain_until: datetime | None = None) -> None:
        super().__init__(client, bucket, prefix)
        self.kms_key_id, self.lock_mode, self.retain_until = kms_key_id, lock_mode, retain_until

    @classmethod
    def configure(cls, client: Any, settings: Any, now: datetime) -> tuple[S3Target, list[str]]:
        """A target for ``archive.s3``; Object Lock retention only when the bucket has Object Lock enabled."""
        target = cls(client, settings.bucket, settings.prefix, kms_key_id=settings.kms_key_id)
        warnings = []
        if settings.object_lock_mode:
            if target.lock_enabled():
                target.lock_mode = settings.object_lock_mode
                target.retain_until = now + timedelta(days=settings.retain_days)
            else:
                warnings.append(f"s3://{settings.bucket} has no Object Lock enabled: archived objects are not locked "
                                f"({settings.object_lock_mode} was asked for)")
        return target, warnings

    def put(self, rel: str, data: bytes) -> str | None:
        """Upload one object; returns its VersionId."""
        args: dict[str, Any] = {
            "Bucket": self.bucket, "Key": self.prefix + rel, "Body": data,
            # Object Lock uploads must carry Content-MD5 or an SDK checksum; SHA-256 also lets S3 check the bytes.
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        }
        if self.kms_key_id:
            args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        if self.lock_mode and self.retain_until:
            args.update(ObjectLockMode=self.lock_mode, ObjectLockRetainUntilDate=self.retain_until)
        return self.client.put_object(**args).get("VersionId")

    def put_all(self, files: Mapping[str, bytes], under: str = "") -> dict[str, str | None]:
        return {under + rel: self.put(under + rel, data) for rel, data in files.items()}
