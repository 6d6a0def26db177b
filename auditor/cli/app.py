"""What every command shares: the ``auditor`` group, the error guard, the window options, the consoles and the
exit codes. Each command lives in a module of its own beside this one and imports only this module of the CLI.

Exit codes: 0 done, 1 findings at or above --fail-on, 2 usage or config error, 3 the report is incomplete
(a check errored, a check had no data, or, with --strict, input was skipped; the report is still written),
4 delivery failed, 5 internal error. When several apply, the first of 2, 5, 3, 4, 1 wins.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.console import Console

from auditor import __version__
from auditor.config import LoadedConfig
from auditor.errors import AuditorError, UsageError
from auditor.models import TimeWindow
from auditor.timeparse import resolve_window

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_CHECK_ERROR, EXIT_DELIVERY, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5
_PRECEDENCE = (EXIT_USAGE, EXIT_INTERNAL, EXIT_CHECK_ERROR, EXIT_DELIVERY, EXIT_FINDINGS)

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def exit_code(codes: set[int]) -> int:
    """The code that wins when several apply: the first of 2, 5, 3, 4, 1."""
    for code in _PRECEDENCE:
        if code in codes:
            return code
    return EXIT_OK


def guard(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn domain errors into one message and an exit code; only here does the tool print and exit."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except AuditorError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the CLI edge: anything else is an internal error
            logging.getLogger("auditor").exception("internal error")
            err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code)
    return wrapper


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config PATH``, default ``config.yaml``."""
    return click.option("--config", "config_path", default="config.yaml", show_default=True,
                        type=click.Path(dir_okay=False), help="The config file.")(fn)


def window_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--since`` and ``--until``, resolved by :func:`window`."""
    fn = click.option("--until", help="Window end (exclusive), in the same forms. --since alone means until now.")(fn)
    return click.option("--since", help="Window start: ISO 8601 (2026-11-09T00:00:00Z), a date (2026-11-09) or "
                                        "relative (7d).")(fn)


def window(loaded: LoadedConfig, since: str | None, until: str | None, now: datetime) -> TimeWindow:
    """The run's window from ``--since``/``--until``, else the config's ``window:``, else the default. A bad
    configured window is a config error at its line; a bad option is a usage error."""
    configured = (loaded.config.window.since, loaded.config.window.until) if loaded.config.window else None
    try:
        return resolve_window(since, until, now, configured)
    except ValueError as exc:
        if since is None and until is None and configured:
            raise loaded.error(str(exc), ("window",)) from None
        raise UsageError(str(exc)) from None


def echo(text: str) -> None:
    """Plain text to stdout: no markup, no highlighting."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """Plain text to stderr."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """Network-security audit reports from AWS VPC Flow Logs and CloudTrail."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
