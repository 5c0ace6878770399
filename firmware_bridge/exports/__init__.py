"""Emulated apps: a canonical recording written as each app or wearable exports it.

Tests build real exports in every dialect from these (the readers in ``gaitedge.formats`` are
pinned by the vendors' own lines and the wild exports in ``shared/data/wild-exports``; these
writers follow the same facts), and ``bench/formats.py`` replays held-out recordings through
them. Each module has ``VARIANTS``: name -> ``render(recording, out_dir) -> Path`` (the path a
user would give: a zip, a folder or a file).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from gaitedge.recording import Recording

MODULES = (
    "firmware_bridge.exports.sensorlogger",
    "firmware_bridge.exports.phyphox",
    "firmware_bridge.exports.metabase",
    "firmware_bridge.exports.sensorlog",
    "firmware_bridge.exports.shimmer",
    "firmware_bridge.exports.edgeimpulse",
    "firmware_bridge.exports.physicstoolbox",
    "firmware_bridge.exports.axivity",
    "firmware_bridge.exports.movesense",
    "firmware_bridge.exports.sensorsdatalogger",
)

Renderer = Callable[[Recording, Path], Path]


def variants() -> dict[str, Renderer]:
    """Every variant of every app, as ``module-variant`` -> renderer."""
    out: dict[str, Renderer] = {}
    for name in MODULES:
        mod = importlib.import_module(name)
        short = name.rsplit(".", 1)[1]
        out.update({f"{short}-{v}": fn for v, fn in mod.VARIANTS.items()})
    return out


def render(variant: str, recording: Recording, out_dir: Path) -> Path:
    """Write ``recording`` as ``variant`` (see :func:`variants`) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return variants()[variant](recording, out_dir)
