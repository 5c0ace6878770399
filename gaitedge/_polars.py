"""polars, the CSV engine (``gaitedge.recording``'s canonical CSV, ``gaitedge.formats``' tables),
loaded with its allocator on transparent huge pages."""

from __future__ import annotations

import os
from types import ModuleType

# polars' own switch (read when polars loads: it configures jemalloc then) for its allocator on
# transparent huge pages: a one-hour export's columns fault in 2 MiB pages instead of 4 KiB
# ones, its parse ~13 % faster on a 2-core VM (``bench/formats.py``'s ``parse_vs_pandas``).
# Set only when the user has not set it; no effect where polars was loaded before, or where
# the kernel has THP off. A user's ``_RJEM_MALLOC_CONF`` still has the last word.
THP_SWITCH = "POLARS_THP"


def polars() -> ModuleType:
    """The polars module."""
    os.environ.setdefault(THP_SWITCH, "1")
    import polars as pl

    return pl
