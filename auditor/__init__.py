"""auditor: scheduled, evidence-grade network-security audit reports from VPC Flow Logs and CloudTrail."""

__version__ = "0.1.0"
