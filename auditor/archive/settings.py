"""Config models of the evidence archive. ``auditor.config`` assembles them; do not import it here."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from auditor.configbase import Strict


class S3ArchiveSettings(Strict):
    bucket: str = Field(description="The archive bucket.")
    prefix: str = Field("auditor/", description="Key prefix of the bundles.")
    kms_key_id: Optional[str] = Field(None, description="SSE-KMS key for the objects.")
    object_lock_mode: Optional[Literal["GOVERNANCE", "COMPLIANCE"]] = Field(None, description="Object Lock mode.")
    retain_days: int = Field(365, ge=1, description="Object Lock retain-until, in days from the upload.")


class SigningSettings(Strict):
    method: Literal["none", "ed25519", "hmac", "kms"] = Field("none", description="How manifests are signed.")
    key_env: Optional[str] = Field(None, description="The environment variable holding the private key (ed25519) or secret (hmac).")
    kms_key_id: Optional[str] = Field(None, description="The KMS key that signs (method: kms).")


class ArchiveSettings(Strict):
    dir: Optional[str] = Field(None, description="A local archive folder.")
    s3: Optional[S3ArchiveSettings] = Field(None, description="An S3 archive.")
    signing: SigningSettings = Field(default_factory=SigningSettings, description="Manifest signatures.")
    keep_runs: Optional[int] = Field(None, ge=1, description="Local retention: keep this many runs per suite, prune older ones with a signed checkpoint.")
