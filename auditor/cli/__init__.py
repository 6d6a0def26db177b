"""The command line: commands -> run_audit / validate / checks / schedule / verify; errors -> messages and exit
codes (:mod:`auditor.cli.app`). Each command is a module of its own; this package puts them on one group."""

from __future__ import annotations

from auditor.cli import (
    aws,
    backfill,
    checks,
    demo,
    ingest,
    query,
    run,
    schedule,
    validate,
    verify,
)
from auditor.cli.app import EXIT_OK, exit_code, main

for command in (run.run, validate.validate, checks.list_checks, demo.demo, aws.athena, aws.iam_policy, aws.inventory,
                verify.verify, query.query, schedule.schedule, ingest.ingest, backfill.backfill):
    main.add_command(command)

__all__ = ["EXIT_OK", "exit_code", "main"]
