"""Config models of the evidence archive. ``auditor.config`` assembles them; do not import it here."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from auditor.configbase import Strict

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
    def _key_for_method(self) -> "SigningSettings":
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
    def _a_target(self) -> "ArchiveSettings":
        if self.dir is None and self.s3 is None:
            raise ValueError("archive needs a target: dir (a local folder), s3 (a bucket), or both")
        return self


SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
