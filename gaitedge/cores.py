"""The CPU cores this process may run on (its affinity where the OS has one)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity on Linux, else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
