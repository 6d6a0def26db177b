"""AWS sessions for a run, the accounts and regions it audits, and running the suite once per account and region.

Credentials come from the standard boto3 chain (environment, shared config, SSO, instance or task role), or from
``aws.profile``; the config never holds a secret. Each audited account is reached by assuming its ``role_arn``
(with its ``external_id``), and the assumed role's credentials refresh themselves before they expire, so a run
longer than the role's session lasts. Clients are made per call from an :class:`AwsSessions`; nothing here
keeps a client at module level, and tests hand in their own :class:`AwsSessions`.

The suite runs once per account and region (a *target*), in parallel up to ``aws.max_parallel``. Each target
gets its own embedded database holding its own inventory, and the Athena queries are restricted to its account
and region. The results are merged into one report: every row carries ``account_id`` and ``region``, and a
target that fails (a role that cannot be assumed, an API that refuses) becomes an error of each check for that
target, shown in the report, while the other targets go on.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from auditor import __version__
from auditor.config import LoadedConfig
from auditor.engines.athena.settings import AccountSpec, AwsSettings
from auditor.errors import AuditorError, EngineError
from auditor.models import CheckResult, DataQuality, QueryRun, Status

if TYPE_CHECKING:
    import boto3

    from auditor.engines.athena.cost import Budget
    from auditor.pipeline import Execution
    from auditor.plan import Plan

log = logging.getLogger(__name__)

AWS_ENGINES = ("athena", "aws_api")
ROLE_SESSION_SECONDS = 3600
# Errors that mean "slow down", from the service or from botocore's own retry of it
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
                              "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
                              "SlowDown", "ProvisionedThroughputExceededException", "PriorRequestNotComplete"})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or ''."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def describe_error(exc: BaseException) -> str:
    """A one-line reason for an AWS failure, without request details."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


class AwsSessions:
    """boto3 sessions and clients: the base session, and one per audited account with its role assumed.

    ``session`` replaces the base session (default: ``aws.profile`` or the default chain); ``endpoint_url``
    points every client at one endpoint (a test server). Thread-safe.
    """

    def __init__(self, settings: AwsSettings, *, session: "boto3.Session | None" = None,
                 endpoint_url: str | None = None, session_name: str = "auditor") -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.session_name = session_name
        self._base = session
        self._accounts: dict[str, "boto3.Session"] = {}
        self._lock = threading.Lock()
        # boto3 sessions are not thread-safe; clients are (https://boto3.amazonaws.com/v1/documentation/api/
        # latest/guide/clients.html#multithreading-or-multiprocessing-with-clients), so only creation is serialised.
        self._create = threading.Lock()

    def base(self) -> "boto3.Session":
        with self._lock:
            if self._base is None:
                import boto3
                self._base = boto3.Session(profile_name=self.settings.profile) if self.settings.profile else boto3.Session()
            return self._base

    def default_region(self) -> str | None:
        return self.base().region_name

    def _client_config(self) -> Any:
        from botocore.config import Config
        # Standard retry mode retries throttling and transient errors with jittered backoff.
        return Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra=f"auditor/{__version__}")

    def client(self, service: str, region: str | None = None, account: AccountSpec | None = None) -> Any:
        """A new client of ``service`` in ``region``, as ``account``'s role (or the base credentials)."""
        session = self.session_for(account) if account is not None else self.base()
        kwargs: dict[str, Any] = {"config": self._client_config()}
        if region:
            kwargs["region_name"] = region
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        try:
            with self._create:
                return session.client(service, **kwargs)
        except Exception as exc:  # botocore NoRegionError and friends
            raise EngineError(f"cannot make an AWS {service} client: {describe_error(exc)}", engine="aws") from exc

    def session_for(self, account: AccountSpec) -> "boto3.Session":
        """The session of ``account``'s role, assumed once and refreshed before it expires."""
        with self._lock:
            cached = self._accounts.get(account.id)
        if cached is not None:
            return cached
        session = self._assume(account)
        with self._lock:
            return self._accounts.setdefault(account.id, session)

    def _assume(self, account: AccountSpec) -> "boto3.Session":
        import boto3
        from botocore.credentials import RefreshableCredentials
        from botocore.session import get_session

        sts = self.client("sts", self.default_region() or "us-east-1")
        request: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": self.session_name,
                                   "DurationSeconds": ROLE_SESSION_SECONDS}
        if account.external_id:
            request["ExternalId"] = account.external_id

        def fetch() -> dict[str, str]:
            try:
                creds = sts.assume_role(**request)["Credentials"]
            except Exception as exc:
                raise EngineError(f"account {account.id}: cannot assume {account.role_arn}: {describe_error(exc)}",
                                  engine="aws") from exc
            expiry = creds["Expiration"]
            return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                    "token": creds["SessionToken"],
                    "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry)}

        credentials = RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch,
                                                                  method="sts-assume-role")
        botocore_session = get_session()
        # Share the parsed service models: loading EC2's takes a noticeable part of a second per session.
        botocore_session.register_component("data_loader", self.base()._session.get_component("data_loader"))
        # boto3 has no public way to give a session refreshable credentials; this is the documented-by-use
        # pattern (botocore's own AssumeRoleProvider sets the same attribute).
        botocore_session._credentials = credentials
        return boto3.Session(botocore_session=botocore_session, region_name=self.default_region())

    def caller_account(self, account: AccountSpec | None = None) -> str:
        """The account ID the credentials belong to (sts:GetCallerIdentity needs no permission)."""
        if account is not None:
            return account.id
        try:
            return str(self.client("sts", self.default_region() or "us-east-1").get_caller_identity()["Account"])
        except AuditorError:
            raise
        except Exception as exc:
            raise EngineError(f"cannot tell which account the credentials belong to: {describe_error(exc)}",
                              engine="aws") from exc


@dataclass(frozen=True)
class Target:
    """One account and region the suite runs in. ``account`` None: the base credentials, no account filter."""

    account: AccountSpec | None
    region: str | None
    filtered: bool = True  # False: the session's own region, which the config did not ask to restrict to

    @property
    def account_id(self) -> str | None:
        return self.account.id if self.account else None

    @property
    def label(self) -> str:
        return f"{self.account_id or 'default account'}/{self.region or 'default region'}"


class AwsRun:
    """What the AWS parts of one run share: the sessions and the Athena scan budget."""

    def __init__(self, sessions: AwsSessions, budget: "Budget") -> None:
        self.sessions = sessions
        self.budget = budget


class TargetConfig(LoadedConfig):
    """A loaded config narrowed to one target, carrying the run's AWS context to the engines and the
    inventory loader (which receive the loaded config and nothing else)."""

    target: Target
    aws: AwsRun


def uses_aws(loaded: LoadedConfig) -> bool:
    """Whether any source is read through AWS (Athena, or the live inventory)."""
    sources = loaded.config.sources
    return any(getattr(getattr(sources, name), "engine", None) in AWS_ENGINES
               for name in ("flow_logs", "cloudtrail", "inventory"))


def aws_run(loaded: LoadedConfig, sessions: AwsSessions | None = None) -> AwsRun:
    """The run's AWS context: from a :class:`TargetConfig`, else made from the config."""
    if isinstance(loaded, TargetConfig):
        return loaded.aws
    from auditor.engines.athena.cost import Budget
    config = loaded.config
    return AwsRun(sessions=sessions or AwsSessions(config.aws), budget=Budget(config.athena.max_bytes_scanned))


def target_of(loaded: LoadedConfig, sessions: AwsSessions) -> Target:
    """The one target a (narrowed) config names."""
    if isinstance(loaded, TargetConfig):
        return loaded.target
    targets = plan_targets(loaded, sessions)
    return targets[0]


def plan_targets(loaded: LoadedConfig, sessions: AwsSessions) -> list[Target]:
    """Every account and region to audit: each account's regions (default ``aws.regions``); without
    ``accounts``, each of ``aws.regions`` with the base credentials, else the session's region."""
    config = loaded.config
    if config.accounts:
        targets = []
        for i, account in enumerate(config.accounts):
            regions = account.regions or config.aws.regions
            if not regions:
                raise loaded.error(f"account {account.id} has no regions: set accounts[{i}].regions or aws.regions",
                                   ("accounts", i))
            targets.extend(Target(account, region) for region in regions)
        return targets
    if config.aws.regions:
        return [Target(None, region) for region in config.aws.regions]
    return [Target(None, sessions.default_region(), filtered=False)]


def narrowed(loaded: LoadedConfig, target: Target, context: AwsRun) -> TargetConfig:
    """``loaded`` restricted to one target: its account alone, with its region alone."""
    config = loaded.config
    accounts = (target.account.model_copy(update={"regions": (target.region,)}),) if target.account else ()
    aws = config.aws.model_copy(update={"regions": (target.region,) if target.region and target.filtered else ()})
    return TargetConfig(config=config.model_copy(update={"accounts": accounts, "aws": aws}), path=loaded.path,
                        positions=loaded.positions, target=target, aws=context)


# --- running per target ---------------------------------------------------------------------------------

def run_targets(loaded: LoadedConfig, plan: "Plan", execute: Callable[[LoadedConfig], "Execution"], *,
                sessions: AwsSessions | None = None) -> "Execution":
    """Run ``execute`` (the execute stage over one set of inputs) once per target and merge what it returns.

    A config with no AWS source runs as it is. One target without an account runs unmerged. Otherwise every
    target's rows are tagged with its account and region, and a failing target becomes an error per check.
    """
    if not uses_aws(loaded):
        return execute(loaded)
    context = aws_run(loaded, sessions)
    targets = plan_targets(loaded, context.sessions)
    if len(targets) == 1 and targets[0].account is None:
        return _with_cost(execute(narrowed(loaded, targets[0], context)), plan, loaded, ())
    workers = max(1, min(loaded.config.aws.max_parallel, len(targets)))

    def one(target: Target) -> "tuple[Target, Execution | BaseException]":
        try:
            return target, execute(narrowed(loaded, target, context))
        except AuditorError as exc:
            return target, exc
        except Exception as exc:  # noqa: BLE001 - one target's failure must not sink the others
            log.exception("%s failed", target.label)
            return target, EngineError(f"internal error: {type(exc).__name__}: {exc}", engine="aws")

    if workers == 1:
        outcomes = [one(t) for t in targets]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auditor-target") as pool:
            outcomes = list(pool.map(one, targets))
    return _with_cost(merge_targets(outcomes, plan), plan, loaded, outcomes)


def merge_targets(outcomes: "Sequence[tuple[Target, Execution | BaseException]]", plan: "Plan") -> "Execution":
    """One execution from one per target (in target order): rows tagged, findings recomputed, failures kept."""
    from auditor.evaluate import check_result
    from auditor.pipeline import Execution

    results: list[CheckResult] = []
    for pc in plan.checks:
        per_target: list[tuple[Target, CheckResult]] = []
        for target, outcome in outcomes:
            if isinstance(outcome, BaseException):
                per_target.append((target, _failed(pc, target, outcome)))
            else:
                per_target.append((target, next(r for r in outcome.results if r.check_id == pc.spec.id)))
        results.append(_merge_check(pc, per_target, check_result))

    data_quality = DataQuality()
    warnings: list[str] = []
    captured: list[datetime] = []
    places: set[tuple[str | None, str | None]] = set()
    for target, outcome in outcomes:
        places.add((target.account_id, target.region))
        if isinstance(outcome, BaseException):
            warnings.append(f"{target.label} could not be audited: {outcome}")
            continue
        data_quality = data_quality.merge(outcome.data_quality)
        warnings.extend(outcome.warnings)
        places |= set(outcome.places)
        if outcome.captured_at is not None:
            captured.append(outcome.captured_at)
    return Execution(results=tuple(results), data_quality=data_quality, captured_at=min(captured) if captured else None,
                     warnings=tuple(dict.fromkeys(warnings)), places=frozenset(places))


def _failed(pc: Any, target: Target, exc: BaseException) -> CheckResult:
    from auditor.evaluate import errored, skipped
    if pc.skip_reason is not None:
        return skipped(pc.spec, pc.skip_reason)
    return errored(pc.spec, str(exc))


def _tagged(target: Target, result: CheckResult) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    columns = tuple(c for c in ("account_id", "region") if c not in result.columns) + tuple(result.columns)
    rows = []
    for row in result.rows:
        tagged = dict(row)
        tagged["account_id"] = row.get("account_id") or target.account_id
        tagged["region"] = row.get("region") or target.region
        rows.append(tagged)
    return columns, rows


def _merge_check(pc: Any, per_target: Sequence[tuple[Target, CheckResult]], check_result: Callable[..., CheckResult]) -> CheckResult:
    spec = pc.spec
    if pc.skip_reason is not None:
        return per_target[0][1]
    # A target without data still gives the rows its other sources gave; the merged check has no data only
    # when no target had any.
    ran = [(t, r) for t, r in per_target if r.status in (Status.PASS, Status.FAIL, Status.NO_DATA)]
    blind = [t for t, r in ran if r.status is Status.NO_DATA]
    failed = [(t, r) for t, r in per_target if r.status is Status.ERROR]
    skipped = [(t, r) for t, r in per_target if r.status is Status.SKIPPED]
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    queries: list[QueryRun] = []
    notes: list[str] = []
    for target, result in per_target:
        for q in result.queries:
            queries.append(replace(q, name=f"{q.name} ({target.label})"))
    for target, result in ran:
        cols, tagged = _tagged(target, result)
        columns.extend(c for c in cols if c not in columns)
        rows.extend(tagged)
        notes.extend(result.notes)
    for target, result in skipped:
        notes.append(f"skipped for {target.label}: {'; '.join(result.notes) or result.error or 'no reason given'}")
    stats = {"window": str(pc.window), "targets": f"{len(ran)} of {len(per_target)} ran"}
    no_data: tuple[str, ...] = ()
    if blind and len(blind) == len(ran):
        no_data = tuple(dict.fromkeys(s for _, r in ran for s in r.no_data_sources))
    elif blind:
        notes.append(f"no data for {', '.join(t.label for t in blind)}: its rows rest on the other sources only")
    merged = check_result(spec, columns, rows, tuple(queries), stats=stats, notes=tuple(dict.fromkeys(notes)),
                          no_data=no_data)
    if failed:
        error = "; ".join(f"{t.label}: {r.error}" for t, r in failed)
        return replace(merged, status=Status.ERROR, error=error)
    if not ran and skipped:
        return replace(merged, status=Status.SKIPPED, notes=tuple(dict.fromkeys(notes)))
    return merged


# --- cost and the per-target breakdown ------------------------------------------------------------------

def _with_cost(execution: "Execution", plan: "Plan", loaded: LoadedConfig,
               outcomes: "Sequence[tuple[Target, Execution | BaseException]]") -> "Execution":
    """Add each check's Athena bytes and cost to its stats, and the run's totals and per-target breakdown to
    the data-quality notes and counters."""
    from auditor.engines.athena.cost import show_bytes, show_usd

    pricing = loaded.config.pricing
    results = []
    total_bytes = total_cost = 0.0
    queries = 0
    for result in execution.results:
        athena = [q for q in result.queries if q.engine == "athena" and q.stats.bytes_scanned is not None]
        if athena:
            scanned = sum(int(q.stats.bytes_scanned or 0) for q in athena)
            cost = sum(_query_cost(q, pricing) for q in athena)
            total_bytes += scanned
            total_cost += cost
            queries += len(athena)
            result = replace(result, stats={**result.stats, "athena_queries": len(athena),
                                            "bytes_scanned": show_bytes(scanned), "estimated_cost": show_usd(cost)})
        results.append(result)
    notes: list[str] = []
    counters: dict[str, int] = {}
    if queries:
        notes.append(f"Athena: {queries} quer{'y' if queries == 1 else 'ies'} scanned {show_bytes(int(total_bytes))}; "
                     f"estimated cost {show_usd(total_cost)} at ${pricing.athena_usd_per_tb:g}/TB with "
                     f"{show_bytes(pricing.athena_min_bytes)} minimum per query")
        counters = {"athena_queries": queries, "athena_bytes_scanned": int(total_bytes)}
    for target, outcome in outcomes:
        notes.append(_breakdown(target, outcome, pricing))
    quality = execution.data_quality.merge(DataQuality(notes=tuple(notes), counters=counters))
    return replace(execution, results=tuple(results), data_quality=quality)


def _query_cost(run: QueryRun, pricing: Any) -> float:
    """The cost the engine estimated, else one from the bytes it reports."""
    from auditor.engines.athena.cost import cost_usd
    if run.stats.cost_usd is not None:
        return float(run.stats.cost_usd)
    return cost_usd(int(run.stats.bytes_scanned or 0), pricing)


def _breakdown(target: Target, outcome: Any, pricing: Any) -> str:
    from auditor.engines.athena.cost import show_bytes, show_usd

    if isinstance(outcome, BaseException):
        return f"{target.label}: failed, no check ran ({outcome})"
    ran = [r for r in outcome.results if r.status in (Status.PASS, Status.FAIL)]
    errors = sum(1 for r in outcome.results if r.status is Status.ERROR)
    findings = sum(len(r.findings) for r in outcome.results)
    athena = [q for r in outcome.results for q in r.queries if q.engine == "athena" and q.stats.bytes_scanned is not None]
    scanned = sum(int(q.stats.bytes_scanned or 0) for q in athena)
    cost = sum(_query_cost(q, pricing) for q in athena)
    text = f"{target.label}: {len(ran)} checks ran, {findings} findings, {errors} errors"
    if athena:
        text += f", Athena scanned {show_bytes(scanned)} (estimated {show_usd(cost)})"
    return text
