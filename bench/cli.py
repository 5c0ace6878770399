"""Start-up cost of the command line: ``gaitedge --help`` against a bare Python start.

    python bench/cli.py --json [--runs 11]

Runs the installed console script (``gaitedge``, next to this Python, or on PATH) with
``--help``, and ``python -c pass``, each ``--runs`` times, interleaved so that load from other
processes falls on both alike, as fresh subprocesses with this checkout first on PYTHONPATH.
Last line: ``{"help_wall_s", "python_startup_s", "ratio"}``: the medians of the wall times, in
seconds, and their ratio. Target on the 2-core sandbox: ``help_wall_s`` <= 0.3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def console_script() -> str:
    """The installed ``gaitedge`` entry point, the one a user runs."""
    beside = Path(sys.executable).with_name("gaitedge")
    found = str(beside) if beside.exists() else shutil.which("gaitedge")
    if found is None:
        raise SystemExit("error: no gaitedge console script; pip install -e . first")
    return found


def wall_s(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    help_cmd = [console_script(), "--help"]
    bare_cmd = [sys.executable, "-c", "pass"]
    wall_s(help_cmd, env)  # warm the file cache once; not counted
    helps, bares = [], []
    for _ in range(runs):
        helps.append(wall_s(help_cmd, env))
        bares.append(wall_s(bare_cmd, env))
    help_s, bare_s = statistics.median(helps), statistics.median(bares)
    return {
        "help_wall_s": round(help_s, 4),
        "python_startup_s": round(bare_s, 4),
        "ratio": round(help_s / bare_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print the result as one JSON line.")
    parser.add_argument("--runs", type=int, default=11, help="Runs of each command (median).")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<18} {value}")


if __name__ == "__main__":
    main()
