"""Commands of the AWS side: ``athena ddl [--apply]``, ``iam-policy``, ``inventory snapshot --out DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from auditor.aws import AwsSessions, plan_targets
from auditor.builtins import builtins
from auditor.cli.app import config_option, echo, guard, note
from auditor.config import load_config
from auditor.engines.athena import ddl as ddl_module
from auditor.engines.sources.aws_inventory import collect, write_snapshot
from auditor.errors import AuditorError, UsageError
from auditor.iam import policy_documents


@click.group("athena")
def athena() -> None:
    """Athena tables for the flow-log and CloudTrail sources."""


@athena.command("ddl")
@config_option
@click.option("--apply", "apply_", is_flag=True, help="Run the statements in Athena instead of printing them.")
@guard
def ddl(config_path: str, apply_: bool) -> int:
    """Print (or run) CREATE TABLE statements with partition projection for the configured Athena sources."""
    loaded = load_config(config_path)
    items = ddl_module.statements(loaded.config)
    if not apply_:
        echo(";\n\n".join(sql for _, sql in items) + ";")
        return 0
    sessions = AwsSessions(loaded.config.aws)
    ids = ddl_module.apply(items, lambda source: sessions.client("athena", source.region or sessions.default_region()))
    for (source, sql), query_id in zip(items, ids[-len(items):]):
        name = sql.split("EXISTS ", 1)[1].split(" (", 1)[0]
        echo(f"created {name} in workgroup {source.workgroup} (query {query_id})")
    return 0


@click.command("iam-policy")
@config_option
@guard
def iam_policy(config_path: str) -> int:
    """Print the least-privilege IAM policy the configured checks and sources need."""
    loaded = load_config(config_path)
    docs = policy_documents(loaded, builtins().checks)
    if not docs["runner"]["Statement"] and len(docs) == 1:
        note("no source is read through AWS: the run needs no AWS permission")
    echo(json.dumps(docs["runner"] if len(docs) == 1 else docs, indent=2))
    return 0


@click.group("inventory")
def inventory() -> None:
    """The EC2 inventory."""


@inventory.command("snapshot")
@config_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Write DIR/<account>/<region>/describe-*.json.")
@guard
def snapshot(config_path: str, out_dir: str) -> int:
    """Save the live inventory of every configured account and region as AWS CLI JSON, with captured_at."""
    loaded = load_config(config_path)
    sessions = AwsSessions(loaded.config.aws)
    failures = 0
    for target in plan_targets(loaded, sessions):
        if not target.region:
            raise UsageError("no region to snapshot: set aws.regions (or accounts[].regions), or AWS_REGION")
        try:
            account = sessions.caller_account(target.account)
            docs = collect(sessions.client("ec2", target.region, target.account), account, target.region)
        except AuditorError as exc:  # one account's failure does not stop the others; it is reported
            failures += 1
            note(f"error: {target.label}: {exc}")
            continue
        for warning in docs.warnings:
            note(f"warning: {warning}")
        files = write_snapshot(Path(out_dir), docs)
        counts = ", ".join(f"{len(items)} {stem.removeprefix('describe-')}" for stem, items in docs.items.items())
        echo(f"{account}/{target.region}: {counts} -> {files[0].parent}")
    return 3 if failures else 0
