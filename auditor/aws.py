"""AWS for the whole tool: the one boto3 session factory, the accounts and regions a run audits, and the
one reading of AWS errors.

Credentials come from the standard boto3 chain (environment, shared config, SSO, instance or task role), or from
``aws.profile``; the config never holds a secret. Each audited account is reached by assuming its ``role_arn``
(with its ``external_id``), and the assumed role's credentials refresh themselves before they expire, so a run
longer than the role's session lasts. Clients are made per call from an :class:`AwsSessions`; nothing here
keeps a client at module level, and tests hand in their own :class:`AwsSessions`. The engines, the evidence
archive and the SES mail transport all get their clients here.

A run audits one *target* (an account and a region) at a time: :func:`plan_targets` lists them, and
:mod:`auditor.execute` runs the checks once per target and merges the results.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from auditor import __version__
from auditor.config import AccountSpec, AwsSettings, LoadedConfig
from auditor.errors import AuditorError, EngineError

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

AWS_ENGINES = ("athena", "aws_api")
ROLE_SESSION_SECONDS = 3600
# Errors that mean "slow down", from the service or from botocore's own retry of it
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
                              "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
                              "SlowDown", "ProvisionedThroughputExceededException", "PriorRequestNotComplete"})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (``NoSuchKey``, ``ThrottlingException``), or ''."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code") or "") if isinstance(response, dict) else ""


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is botocore's: a service's refusal (ClientError) or a client-side failure (BotoCoreError)."""
    # botocore is imported here, not at the top: importing it costs start-up time that commands without AWS avoid.
    from botocore.exceptions import BotoCoreError, ClientError
    return isinstance(exc, (BotoCoreError, ClientError))


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

    def __init__(self, settings: AwsSettings, *, session: boto3.Session | None = None,
                 endpoint_url: str | None = None, session_name: str = "auditor") -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.session_name = session_name
        self._base = session
        self._accounts: dict[str, boto3.Session] = {}
        self._lock = threading.Lock()
        # boto3 sessions are not thread-safe; clients are (https://boto3.amazonaws.com/v1/documentation/api/
        # latest/guide/clients.html#multithreading-or-multiprocessing-with-clients), so only creation is serialised.
        self._create = threading.Lock()

    def base(self) -> boto3.Session:
        with self._lock:
            if self._base is None:
                import boto3  # here, not at the top: boto3 costs start-up time that runs without AWS avoid
                self._base = boto3.Session(profile_name=self.settings.profile) if self.settings.profile else boto3.Session()
            return self._base

    def default_region(self) -> str | None:
        return self.base().region_name

    def _client_config(self, signature_version: str | None = None) -> Any:
        from botocore.config import Config
        # Standard retry mode retries throttling and transient errors with jittered backoff.
        extra = {"signature_version": signature_version} if signature_version else {}
        return Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra=f"auditor/{__version__}",
                      **extra)

    def client(self, service: str, region: str | None = None, account: AccountSpec | None = None, *,
               signature_version: str | None = None) -> Any:
        """A new client of ``service`` in ``region``, as ``account``'s role (or the base credentials).
        ``signature_version`` ("s3v4") pins how requests and presigned URLs are signed."""
        session = self.session_for(account) if account is not None else self.base()
        kwargs: dict[str, Any] = {"config": self._client_config(signature_version)}
        if region:
            kwargs["region_name"] = region
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        try:
            with self._create:
                return session.client(service, **kwargs)
        except Exception as exc:  # botocore NoRegionError and friends
            raise EngineError(f"cannot make an AWS {service} client: {describe_error(exc)}", engine="aws") from exc

    def session_for(self, account: AccountSpec) -> boto3.Session:
        """The session of ``account``'s role, assumed once and refreshed before it expires."""
        with self._lock:
            cached = self._accounts.get(account.id)
        if cached is not None:
            return cached
        session = self._assume(account)
        with self._lock:
            return self._accounts.setdefault(account.id, session)

    def _assume(self, account: AccountSpec) -> boto3.Session:
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


class Budget:
    """The run's Athena scan budget, ``athena.max_bytes_scanned``, shared by every Athena query of the run, across threads.

    A query reserves its estimate before it starts and settles with the bytes Athena reports afterwards.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0
        self.reserved = 0
        self.queries = 0
        self._lock = threading.Lock()

    def reserve(self, estimate: int) -> tuple[bool, int]:
        """Reserve ``estimate`` bytes; returns whether it fits, and what was left before it."""
        with self._lock:
            left = (self.limit - self.spent - self.reserved) if self.limit is not None else -1
            if self.limit is not None and estimate > left:
                return False, max(left, 0)
            self.reserved += estimate
            return True, left

    def settle(self, estimate: int, scanned: int) -> None:
        with self._lock:
            self.reserved -= estimate
            self.spent += max(scanned, 0)
            self.queries += 1


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


def uses_aws(loaded: LoadedConfig) -> bool:
    """Whether any source is read through AWS (Athena, or the live inventory)."""
    sources = loaded.config.sources
    return any(getattr(getattr(sources, name), "engine", None) in AWS_ENGINES
               for name in ("flow_logs", "cloudtrail", "inventory"))


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
