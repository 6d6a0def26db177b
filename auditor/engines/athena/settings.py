"""Config models of the Athena engine, the live AWS inventory, accounts and prices.

``auditor.config`` assembles these into the one schema; this module must not import it.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from auditor.configbase import Strict


class AthenaSourceSpec(Strict):
    """A flow-log or CloudTrail source read through Athena."""

    engine: Literal["athena"] = Field(description="Read this source through Athena.")
    database: str = Field(description="The Glue database that holds the tables.")
    table: str = Field(description="The table (for flow logs, one table per log format).")
    workgroup: str = Field("primary", description="The Athena workgroup. Set BytesScannedCutoffPerQuery on it as the hard stop.")
    output_location: Optional[str] = Field(None, description="s3:// prefix for query results, unless the workgroup enforces one.")


class AwsSettings(Strict):
    profile: Optional[str] = Field(None, description="A named AWS profile; otherwise the standard boto3 credential chain.")
    regions: tuple[str, ...] = Field((), description="Regions to audit.")


class AccountSpec(Strict):
    id: str = Field(pattern=r"^\d{12}$", description="The 12-digit account ID.")
    role_arn: str = Field(description="The role to assume in the account.")
    external_id: Optional[str] = Field(None, description="The external ID the role's trust policy requires.")
    regions: Optional[tuple[str, ...]] = Field(None, description="Regions for this account; default aws.regions.")


class PricingSettings(Strict):
    athena_usd_per_tb: float = Field(5.0, ge=0, description="Athena price per TB scanned (us-east-1 list price).")
    athena_min_bytes: int = Field(10 * 1000**2, ge=0, description="Athena's minimum billed bytes per query (10 MB).")
    insights_usd_per_gb: float = Field(0.005, ge=0, description="Logs Insights price per GB scanned.")
