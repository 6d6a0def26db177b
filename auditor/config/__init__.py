"""The config: one schema (:mod:`.schema`) and its loader (:mod:`.loader`). Importing from ``auditor.config``
gets either."""

from __future__ import annotations

from auditor.config.loader import (
    LoadedConfig,
    check_folders,
    documented_keys,
    load_config,
    refuse_secrets,
    validation_error,
)
from auditor.config.schema import (
    DEFAULT_SENSITIVE_PORTS,
    DEFAULT_SUBJECT,
    SUBJECT_FIELDS,
    SUITE_NAME,
    AccountSpec,
    ArchiveSettings,
    AthenaSettings,
    AthenaSourceSpec,
    AthenaTableSpec,
    AwsApiInventorySpec,
    AwsSettings,
    CacheSettings,
    Config,
    DuckDBSettings,
    EmailSettings,
    ExceptionSpec,
    FlowLogSourceSpec,
    InsightsSettings,
    InsightsSourceSpec,
    PricingSettings,
    ProjectionSpec,
    S3ArchiveSettings,
    ScheduleSettings,
    SigningSettings,
    SmtpSettings,
    Sources,
    SourceSpec,
    Strict,
    SuiteSpec,
    WindowSpec,
    parse_size,
)

__all__ = [
    "DEFAULT_SENSITIVE_PORTS", "DEFAULT_SUBJECT", "SUBJECT_FIELDS", "SUITE_NAME", "AccountSpec", "ArchiveSettings",
    "AthenaSettings", "AthenaSourceSpec", "AthenaTableSpec", "AwsApiInventorySpec", "AwsSettings", "CacheSettings",
    "Config", "DuckDBSettings", "EmailSettings", "ExceptionSpec", "FlowLogSourceSpec", "InsightsSettings",
    "InsightsSourceSpec", "LoadedConfig", "PricingSettings", "ProjectionSpec", "S3ArchiveSettings", "ScheduleSettings",
    "SigningSettings", "SmtpSettings", "SourceSpec", "Sources", "Strict", "SuiteSpec", "WindowSpec",
    "check_folders", "documented_keys", "load_config", "parse_size", "refuse_secrets", "validation_error",
]
