"""The base of every config model: frozen, unknown keys forbidden. Engine modules declare their own
source and settings models on it, and ``auditor.config`` assembles them into the one schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
