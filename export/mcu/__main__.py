"""``python -m export.mcu BUNDLE --out DIR``: write the bundle as C99 for a microcontroller."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from export.mcu.generate import DeviceConfig, generate
from export.mcu.graph import GraphError
from gaitedge.bundle import ContractError
from gaitedge.mounting import MountingError, parse_axis_map


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.mcu", description=__doc__.split("\n")[0])
    p.add_argument("bundle", type=Path, help="an INT8 QDQ bundle (export.quantize)")
    p.add_argument("--out", type=Path, required=True, help="directory for the C sources")
    p.add_argument(
        "--odr-hz", type=float, default=None,
        help="the device's fixed sample rate: a whole multiple of the chain's (default: equal)",
    )  # fmt: skip
    p.add_argument(
        "--mount", default=None,
        help="stored mounting as an axis map like -y,x,z (default: identity; boards with an "
        "estimate call ge_set_mounting)",
    )  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        mounting = None if args.mount is None else parse_axis_map(args.mount)
        out = generate(args.bundle, args.out, DeviceConfig(args.odr_hz, mounting))
    except (ContractError, GraphError, MountingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
