"""Deterministic, realistic demo data (``auditor demo``): VPC Flow Logs, CloudTrail and an EC2 inventory, laid out
as AWS writes them. :mod:`.generate` writes it from the :mod:`.world` (network and constants) with the
:mod:`.flows`, :mod:`.trail` and :mod:`.inventory` writers, and records what it wrote in a :mod:`.manifest`."""

from __future__ import annotations

from auditor.demo.generate import generate
from auditor.demo.manifest import DemoManifest, WeekFacts
from auditor.demo.world import CUSTOM_FIELDS, FLOW_LAG_MAX, MARKER, TRAIL_LAG_MAX, V2_FIELDS

__all__ = ["CUSTOM_FIELDS", "FLOW_LAG_MAX", "MARKER", "TRAIL_LAG_MAX", "V2_FIELDS", "DemoManifest", "WeekFacts",
           "generate"]
