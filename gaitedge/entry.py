"""The entry points of the repository's scripts (``python -m train.*``, ``python -m export.*``):
input a user got wrong (a file, folder, dataset or model that is not there or cannot be used) is
one line on stderr and exit 2, never a traceback; and the argparse types of the numbers an
option cannot take. Torch-free, as the export scripts that run on a Jetson are."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable


class ScriptError(Exception):
    """Input a script cannot use; the message is the one line said (naming the input)."""


def positive(text: str) -> float:
    """An argparse type: a positive, finite number (``--lr``, ``--epochs``)."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (``--max-steps``, ``--windows``)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text}")
        return value

    return parse


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1 (``--fall-threshold``)."""
    value = float(text)
    if not 0.0 <= value <= 1.0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a probability from 0 to 1, not {text}")
    return value


def run(main: Callable[[], object]) -> None:
    """A script's entry point: a dataset, file or model that is not there, not readable or not
    what the script needs is one line on stderr and exit 2, not a traceback."""
    from gaitedge.bundle import ContractError
    from gaitedge.datasets import DatasetError
    from gaitedge.recording import RecordingError

    try:
        main()
    except (OSError, DatasetError, RecordingError, ContractError, ScriptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
