"""The base of every config model: frozen, unknown keys forbidden. Engine modules declare their own
source and settings models on it, and ``auditor.config`` assembles them into the one schema."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def known_log_format(value: str | None) -> str | None:
    """Validate a flow log's LogFormat (``${version} ${account-id} ...``): every field known, none repeated.
    Raises ValueError with a did-you-mean; for the ``format`` validators of the flow-log source models."""
    if value is not None:
        from auditor.engines.sources.flowlogs import parse_log_format
        parse_log_format(value)
    return value


# A LogFormat field, validated as the flow-log reader will parse it.
LogFormat = Annotated[Optional[str], AfterValidator(known_log_format)]
