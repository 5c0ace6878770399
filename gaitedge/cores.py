"""The CPU cores this process may run on (its affinity where the OS has one), and numpy work
split over them."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

# Rows from which a whole-file copy or interpolation is split over threads (numpy releases the
# GIL in both): below it a thread pool costs more than it saves.
PARALLEL_FROM = 100_000
# Rows per piece of such work: a piece's result is written while it is in cache, and pieces of
# every column share the cores evenly (three columns on two cores: no core waits for the third).
PIECE_ROWS = 1 << 16


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity on Linux, else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pieces(n: int, size: int = PIECE_ROWS) -> list[slice]:
    """``range(n)`` as slices of at most ``size`` rows."""
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def run_all(tasks: Sequence[Callable[[], object]], rows: int) -> None:
    """Run ``tasks`` (numpy work on disjoint parts of arrays, releasing the GIL): on one thread
    per usable core when the work spans :data:`PARALLEL_FROM` rows or more, else in turn. The
    results are the same either way (each task writes its own part)."""
    workers = min(len(tasks), usable_cores())
    if rows < PARALLEL_FROM or workers < 2:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="gaitedge") as pool:
        for done in [pool.submit(task) for task in tasks]:
            done.result()
