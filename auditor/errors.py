"""The one exception hierarchy. Library code raises these; only the CLI prints and exits."""

from __future__ import annotations


class AuditorError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 5


class UsageError(AuditorError):
    """A command-line mistake (bad time, since >= until, non-empty --out without --force)."""

    exit_code = 2


class ConfigError(AuditorError):
    """A config mistake. The message names the file, line and column, and the fix."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.path, self.line, self.column = path, line, column
        where = ""
        if path:
            where = f"{path}:{line}:{column}: " if line else f"{path}: "
        super().__init__(f"{where}{message}")
        self.detail = message


class CheckDefinitionError(AuditorError):
    """A built-in or user check whose metadata or query files are inconsistent."""

    exit_code = 2


class EngineError(AuditorError):
    """A query could not be run. Carries the engine's query ID and reason where there is one."""

    def __init__(self, message: str, *, query_id: str | None = None, engine: str | None = None) -> None:
        self.query_id, self.engine = query_id, engine
        suffix = f" (query {query_id})" if query_id else ""
        super().__init__(f"{message}{suffix}")


class CheckSkipped(AuditorError):
    """A check deliberately not run, such as a query over the run's scan budget; the report says why."""


class InputError(AuditorError):
    """An input that cannot be read at all (missing path, unreadable directory)."""

    exit_code = 2


class RenderError(AuditorError):
    """The report could not be rendered."""


class DeliveryError(AuditorError):
    """Mail or archive delivery failed (exit code 4)."""

    exit_code = 4
