"""Count file opens under a directory tree, to prove that a reader reads each input file once.

Linux only: every directory under the root is watched with inotify. The kernel queues an event for each
open(2) of a file in a watched directory by any thread, so the count covers DuckDB's threads as well as
Python's.

The kernel merges an event into the previous one when both are identical and the previous one is still
unread (inotify(7)), so two opens of one file in a row could be counted as one. Two things keep that from
hiding a second read: reads and closes are watched too, so an open that follows a read or a close of the
same file is never merged, and a thread drains the queue while the block runs.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from inotify_simple import INotify, flags

_WATCHED = flags.OPEN | flags.ACCESS | flags.CLOSE_WRITE | flags.CLOSE_NOWRITE


@contextmanager
def count_opens(root: str | os.PathLike[str]) -> Iterator[Counter[str]]:
    """Yield a Counter that holds, once the block ends, how often each file under ``root`` was opened.

    Keys are ``os.path.join(directory, name)`` with the directories as ``os.walk(root)`` gives them, so
    ``str(tmp_path / "a" / "b.log")`` finds ``b.log``. Opens of directories are not counted, and
    directories created inside the block are not watched. Raises RuntimeError if the kernel's event queue
    overflowed, since the count would then be short.
    """
    opens: Counter[str] = Counter()
    overflowed = threading.Event()
    inotify = INotify()
    directories = {inotify.add_watch(d, _WATCHED): d for d, _, _ in os.walk(os.fspath(root))}

    def take(events) -> None:
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                overflowed.set()
            elif event.mask & flags.OPEN and not event.mask & flags.ISDIR and event.wd in directories:
                opens[os.path.join(directories[event.wd], event.name)] += 1

    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            take(inotify.read(timeout=20))

    reader = threading.Thread(target=drain, name="count_opens", daemon=True)
    reader.start()
    try:
        yield opens
    finally:
        done.set()
        reader.join()
        while events := inotify.read(timeout=0):
            take(events)
        inotify.close()
    if overflowed.is_set():
        raise RuntimeError("the inotify event queue overflowed: opens were lost and the count would be short")
