"""``auditor backfill``: the past N windows run into the history, oldest first, so that the first real report
already has trends and a "what changed".

Each past window is run as itself: the same checks and parameters (the config's, or a suite's), the same
suppressions judged on the day that window's run would have run (its end plus the delivery lag), through the same
:func:`~auditor.pipeline.run_audit` as ``auditor run``. Its record is marked ``backfilled``. Only findings.json
is rendered, into a scratch folder that is removed: the history keeps what a later run compares with.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditor.builtins import Registries, builtins
from auditor.clock import utcnow
from auditor.config import LoadedConfig
from auditor.deliver.suite import resolve_suite
from auditor.history import History, sources_key
from auditor.models import RunRecord, TimeWindow
from auditor.pipeline import run_audit


@dataclass(frozen=True)
class Backfilled:
    window: TimeWindow
    record: RunRecord | None  # None: the history already held this window, and it was left alone


def past_windows(current: TimeWindow, weeks: int) -> list[TimeWindow]:
    """The ``weeks`` windows of the current one's length that end where it starts, oldest first."""
    length = current.until - current.since
    return [TimeWindow(current.since - length * n, current.since - length * (n - 1)) for n in range(weeks, 0, -1)]


def backfill(loaded: LoadedConfig, current: TimeWindow, weeks: int, *, suite: str | None = None,
             force: bool = False, clock: Callable[[], datetime] = utcnow,
             registries: Registries | None = None) -> list[Backfilled]:
    """Run the ``weeks`` windows before ``current`` into the history, oldest first. A window the history already
    holds (over the same sources) is skipped unless ``force``. ``suite`` runs a suite's checks instead of the
    config's."""
    reg = registries or builtins()
    view = resolve_suite(loaded, suite, clock(), reg.checks, window=current).loaded if suite else loaded
    config = view.config
    history = History(view.resolve(config.state_dir))
    key = sources_key(config.sources)
    held = {(r.since, r.until) for r in history.load() if r.sources_key == key}
    out: list[Backfilled] = []
    with tempfile.TemporaryDirectory(prefix="auditor-backfill-") as scratch:
        for i, window in enumerate(past_windows(current, weeks)):
            if not force and (window.since, window.until) in held:
                out.append(Backfilled(window, None))
                continue
            # The day that window's weekly run would have run: its end, once the delivery lag has passed.
            ran_at = min(window.until + config.delivery_lag_td, clock())
            outcome = run_audit(view, window, out_dir=Path(scratch) / f"{i:03d}", formats=("json",),
                                clock=lambda ran_at=ran_at: ran_at, registries=reg, backfilled=True)
            out.append(Backfilled(window, outcome.record))
    return out
