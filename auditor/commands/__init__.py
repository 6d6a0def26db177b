"""Sub-commands registered on the ``auditor`` CLI by :mod:`auditor.cli`."""

from __future__ import annotations

import functools
from typing import Any, Callable


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """The CLI's error handling (messages and exit codes), looked up when the command runs, because
    ``auditor.cli`` imports the command modules to register them."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from auditor.cli import _guard
        _guard(fn)(*args, **kwargs)
    return wrapper
