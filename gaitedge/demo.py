"""The offline demo: a recording shipped in the package, played by the device emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.recording import read_recording

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
# A few minutes of UCI HAPT (CC BY 4.0), a held-out test subject; see assets/README.md.
DEMO_RECORDING = ASSETS_DIR / "demo_hapt.csv"


@contextlib.contextmanager
def emulated_device(
    recording: Path = DEMO_RECORDING, *, speed: float = 1.0, loop: bool = True
) -> Iterator[EmulatedSerialDevice]:
    """An emulated wearable streaming ``recording`` on a pseudo-terminal (``device.path``)."""
    rec = read_recording(recording)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=speed, loop=loop))
    with EmulatedSerialDevice(emulator) as device:
        yield device
