"""The offline demo: a recording shipped in the package, played by the device emulator.

Over a pseudo-terminal (``listen --serial``) or over an emulated BLE link: an emulated BlueZ on
a private D-Bus, which bleak's real BlueZ backend talks to (``listen --ble``).

The demo device starts as a live device worn before does: from the mounting estimate stored by
its wearer's earlier session (:data:`DEMO_MOUNTING`, calibrated on HAPT experiment 17 of the
same subject, never on the recording it plays), and goes on calibrating online. ``demo
--cold`` starts a brand-new device (activity held back until it has walked 20 s);
``--calibrate-first`` calibrates on the played recording itself first (look-ahead).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.mounting import MountingEstimator, MountStore
from gaitedge.recording import read_recording

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
# A few minutes of UCI HAPT (CC BY 4.0), a held-out test subject; see assets/README.md.
DEMO_RECORDING = ASSETS_DIR / "demo_hapt.csv"
# The mounting estimate stored by the demo wearer's earlier session (HAPT experiment 17 of the
# same subject 9; the recording plays experiment 18): ``build_demo_mounting`` writes it.
DEMO_MOUNTING = ASSETS_DIR / "demo_mounting.json"
DEMO_MOUNTING_KEY = "hapt:9 experiment 17"


def demo_mount_store(device: str, rate_hz: float) -> MountStore:
    """An in-memory store holding the demo wearer's stored estimate under ``device``."""
    stored = MountStore(DEMO_MOUNTING).get(DEMO_MOUNTING_KEY, rate_hz)
    store = MountStore(None)
    if stored is not None:
        store.put(device, stored)
    return store


def build_demo_mounting(data_root: Path, out: Path = DEMO_MOUNTING) -> MountingEstimator:
    """Calibrate the chain's estimator on HAPT experiment 17 (subject 9) and store it in ``out``
    (``python -c "from gaitedge.demo import *; build_demo_mounting(Path('../shared/data'))"``)."""
    from gaitedge import datasets as ds
    from gaitedge.preprocess import ChainConfig, calibrate

    rec = next(r for r in ds.hapt_recordings(data_root, ["hapt:9"]) if r.group == 17)
    est = calibrate(ChainConfig(mounting="auto"), [(rec.timestamp_s, rec.imu)])
    store = MountStore(None)
    store.put(DEMO_MOUNTING_KEY, est)
    out.write_text(json.dumps(store.entries, indent=1) + "\n")
    return est


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
