"""The offline demo: a recording shipped in the package, played by the device emulator.

Over a pseudo-terminal (``listen --serial``) or over an emulated BLE link: an emulated BlueZ on
a private D-Bus, which bleak's real BlueZ backend talks to (``listen --ble``).
"""

from __future__ import annotations

import contextlib
import logging
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


@contextlib.contextmanager
def emulated_ble_device(recording: Path = DEMO_RECORDING, *, speed: float = 1.0, loop: bool = True):
    """An emulated wearable streaming ``recording`` over BLE (yields an ``EmulatedBleDevice``).

    Inside the block ``DBUS_SYSTEM_BUS_ADDRESS`` points at a private bus whose ``org.bluez`` is
    ``firmware_bridge.ble_emulator``; ``BleSource(device.address)`` connects to it. Needs
    ``dbus-daemon`` (Debian package ``dbus``); RuntimeError where it is missing.
    """
    from firmware_bridge.ble_emulator import emulated_bluez

    rec = read_recording(recording)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=speed, loop=loop))
    # bleak asks bluetoothctl for BlueZ's version and warns without it; the emulated BlueZ
    # has no bluetoothctl, and the warning would only confuse a demo.
    logging.getLogger("bleak.backends.bluezdbus.version").setLevel(logging.ERROR)
    with emulated_bluez() as bluez:
        yield bluez.add_device(emulator)
