"""Bundles compared as a user meets them, on the subjects of a split part: from a cold start,
in uniformly random real mountings, through the runtime's own path.

    python -m train.coldstart --model gaitedge/models/gaitedge-default.onnx \
        --model runs/release-vertical/model.int8.onnx --part val --json

The figures are ``bench/devices.py``'s (issue 22: ``online_activity`` for HAPT, ``online_falls``
for SisFall: ``gaitedge replay --fast`` of each recording, rotated by a uniformly random SO(3)
mounting, by a device that starts cold and calibrates online), computed here on the subjects of
``--part``: ``val`` (validation subjects, drawn from the training side: where choices are made)
or ``test`` (held out: scored once, for the card). Last line: one JSON object per model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench import devices
from bench.devices import online_activity, online_falls
from gaitedge import datasets as ds
from gaitedge import entry
from gaitedge.engine import load_engine
from gaitedge.evaluate import held_out_subjects

log = logging.getLogger("train.coldstart")


def run(model: Path, root: Path, part: str, mountings: int, fall_mountings: int) -> dict:
    engine = load_engine(model)
    contract = engine.contract
    out = {
        "model": str(model),
        "mounting_mode": contract.chain.mounting,
        "hop_samples": contract.chain.hop_samples,
        "part": part,
        "activity_mountings": mountings,
        "fall_mountings": fall_mountings,
    }
    if "activity" in contract.heads:
        subjects = held_out_subjects(contract, "hapt", root, part)
        hapt = list(ds.recordings("hapt", root, subjects))
        out["hapt"] = {"subjects": subjects} | online_activity(engine, hapt, mountings)
        log.info("%s hapt: %s", model.name, out["hapt"])
    if "fall" in contract.heads:
        subjects = held_out_subjects(contract, "sisfall", root, part)
        sisfall = list(ds.recordings("sisfall", root, subjects))
        out["sisfall"] = {"subjects": subjects} | online_falls(engine, sisfall, fall_mountings)
        log.info("%s sisfall: %s", model.name, out["sisfall"])
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m train.coldstart", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", type=Path, action="append", required=True, help="ONNX bundle(s)")
    p.add_argument(
        "--cold-start",
        type=Path,
        default=None,
        help="a cold-start bundle (mounting vertical) run beside each --model whose mounting is "
        "auto while it calibrates, as the runtime does with the shipped one",
    )
    p.add_argument("--part", choices=["val", "test"], default="val")
    p.add_argument(
        "--mountings", type=entry.at_least(1), default=3, help="random mountings per experiment"
    )
    p.add_argument(
        "--fall-mountings", type=entry.at_least(1), default=1, help="per SisFall subject"
    )
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = args.data_root or ds.default_data_root()
    devices.COLD_START = args.cold_start
    results = [run(m, root, args.part, args.mountings, args.fall_mountings) for m in args.model]
    for r in results:
        r["cold_start_model"] = str(args.cold_start) if args.cold_start else None
    print(json.dumps(results) if args.json else json.dumps(results, indent=1))


if __name__ == "__main__":
    entry.run(main)
