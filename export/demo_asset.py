"""Cut the demo recording shipped in ``gaitedge/assets`` from a held-out HAPT subject.

    python -m export.demo_asset --out gaitedge/assets/demo_hapt.csv

Three minutes of experiment 18 (subject 9, one of HAPT's official test subjects, so no shipped
model has trained on it) from row 2750: all six basic activities (standing, sitting, lying,
walking, downstairs, upstairs) and the transitions between them. HAPT is CC BY 4.0; the
attribution travels in ``gaitedge/assets/README.md``. Values are written in the canonical
recording format (m/s², rad/s) with the activity name per sample (empty = unlabelled).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gaitedge import datasets as ds
from gaitedge.entry import run
from gaitedge.recording import Recording, write_recording

DEMO_EXPERIMENT = 18
DEMO_SUBJECT = "hapt:9"
DEMO_START_ROW = 2750
DEMO_DURATION_S = 180.0
# 1e-5 m/s² and rad/s: far below the data's resolution (acc steps of ~1/720 g = 0.014 m/s²),
# and it keeps the file under 1 MB.
DECIMALS = 5


def demo_recording(root: Path) -> Recording:
    """The demo stretch as a canonical recording, timestamps from 0."""
    rec = next(r for r in ds.hapt_recordings(root, [DEMO_SUBJECT]) if r.group == DEMO_EXPERIMENT)
    n = int(DEMO_DURATION_S * rec.rate_hz)
    rows = slice(DEMO_START_ROW, DEMO_START_ROW + n)
    names = np.array(("", *ds.HAPT_LABELS))
    return Recording(
        timestamp_s=np.arange(n) / rec.rate_hz,
        imu=np.round(rec.imu[rows], DECIMALS),
        label=names[rec.sample_label[rows]],
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m export.demo_asset", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("gaitedge/assets/demo_hapt.csv"))
    args = p.parse_args(argv)
    root = args.data_root or ds.default_data_root()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_recording(args.out, demo_recording(root))
    print(args.out)


if __name__ == "__main__":
    run(main)
