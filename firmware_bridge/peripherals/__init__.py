"""Emulated BLE sensors of other makes, encoding recordings as each vendor's firmware does.

Served by ``firmware_bridge.ble_emulator.EmulatedBlueZ.add_peripheral``; the host side decodes
them with ``gaitedge.devices``, which was written apart from these (both are pinned by the
vendors' bytes in ``firmware_bridge/vectors/devices.json``)::

    peripheral = make_peripheral("polar", rec.timestamp_s, rec.imu, PlaybackConfig(speed=8))
    device = bluez.add_peripheral(peripheral)
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator

import numpy as np

from firmware_bridge.peripherals.base import Peripheral, PlaybackConfig

# name -> (module, class, options): one line per emulated device, as gaitedge.devices.DEVICES.
PERIPHERALS: dict[str, tuple[str, str, dict]] = {
    "polar": ("firmware_bridge.peripherals.polar", "PolarPeripheral", {}),
    "polar-h10": ("firmware_bridge.peripherals.polar", "PolarPeripheral", {"model": "h10"}),
    "metawear": ("firmware_bridge.peripherals.metawear", "MetaWearPeripheral", {}),
    "metawear-bmi270": (
        "firmware_bridge.peripherals.metawear",
        "MetaWearPeripheral",
        {"part": "bmi270"},
    ),
    "movesense": ("firmware_bridge.peripherals.movesense", "MovesensePeripheral", {}),
    "thingy": ("firmware_bridge.peripherals.thingy", "ThingyPeripheral", {}),
    "science-journal": ("firmware_bridge.peripherals.gatt", "ScienceJournalPeripheral", {}),
    "uart-csv": ("firmware_bridge.peripherals.gatt", "UartCsvPeripheral", {}),
}

__all__ = ["PERIPHERALS", "Peripheral", "PlaybackConfig", "emulated_peripheral", "make_peripheral"]


def make_peripheral(
    name: str,
    timestamp_s: np.ndarray,
    imu: np.ndarray,
    config: PlaybackConfig | None = None,
    **options,
) -> Peripheral:
    module, cls, defaults = PERIPHERALS[name]
    kind = getattr(importlib.import_module(module), cls)
    return kind(timestamp_s, imu, config, **(defaults | options))


@contextlib.contextmanager
def emulated_peripheral(
    name: str, recording: str | os.PathLike, *, speed: float = 1.0, loop: bool = True
) -> Iterator:
    """An emulated ``name`` sensor streaming ``recording`` on an emulated BlueZ (yields the
    ``EmulatedPeripheralDevice``; ``DBUS_SYSTEM_BUS_ADDRESS`` points at its private bus inside
    the block). Needs ``dbus-daemon``; RuntimeError where it is missing."""
    import logging

    from firmware_bridge.ble_emulator import emulated_bluez
    from gaitedge.recording import read_recording

    rec = read_recording(recording)
    peripheral = make_peripheral(
        name, rec.timestamp_s, rec.imu, PlaybackConfig(speed=speed, loop=loop)
    )
    # bleak asks bluetoothctl for BlueZ's version; the emulated BlueZ has none.
    logging.getLogger("bleak.backends.bluezdbus.version").setLevel(logging.ERROR)
    with emulated_bluez() as bluez:
        yield bluez.add_peripheral(peripheral)
