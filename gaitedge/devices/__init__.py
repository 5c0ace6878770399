"""BLE device profiles: one module per device family, picked at connect, behind one interface.

Each module has the same names::

    NAME            what ``--device-type`` takes
    TITLE           what it streams, for ``gaitedge scan`` and the docs
    NEEDS           what the device must run or allow
    SERVICES        GATT service UUIDs (lower case) that identify it, advertised or on connect
    NAME_PREFIXES   advertised names that identify it when the services are not advertised
    profile(**options) -> gaitedge.devices.base.Profile   (None: the transport's own decoder)

A new device is one new module and one line in :data:`DEVICES`, nothing else. The BLE
transport (``gaitedge.sources.ble``) asks :func:`detect` which profile a device needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

from gaitedge.devices.base import (
    DecodeStats,
    DeviceError,
    DropReason,
    GattLink,
    Pairer,
    Profile,
    Samples,
    UnsupportedDeviceError,
)

__all__ = [
    "DEVICES",
    "DecodeStats",
    "DeviceError",
    "DeviceType",
    "DropReason",
    "GattLink",
    "Pairer",
    "Profile",
    "Samples",
    "UnsupportedDeviceError",
    "detect",
    "list_devices",
    "make_profile",
]

# name -> module; detection tries them in this order (gaitedge's own service first).
DEVICES: dict[str, str] = {
    "gaitedge": "gaitedge.devices.native",
    "polar": "gaitedge.devices.polar",
    "metawear": "gaitedge.devices.metawear",
    "movesense": "gaitedge.devices.movesense",
    "thingy": "gaitedge.devices.thingy",
    "gatt": "gaitedge.devices.gatt",
}


@dataclass(frozen=True)
class DeviceType:
    name: str
    title: str
    needs: str


def module(name: str) -> ModuleType:
    if name not in DEVICES:
        raise ValueError(f"unknown device type {name!r}; known: {', '.join(DEVICES)}")
    return importlib.import_module(DEVICES[name])


def list_devices() -> list[DeviceType]:
    return [DeviceType(n, module(n).TITLE, module(n).NEEDS) for n in DEVICES]


def detect(services: Iterable[str], name: str = "") -> str | None:
    """The device type a set of GATT services (advertised or discovered) or a name says.

    Services decide first (a device may be renamed); the name only where no service matched.
    """
    uuids = {str(u).lower() for u in services}
    for kind in DEVICES:
        if uuids & set(module(kind).SERVICES):
            return kind
    for kind in DEVICES:
        if any(name.startswith(p) for p in module(kind).NAME_PREFIXES):
            return kind
    return None


def make_profile(name: str, **options) -> Profile | None:
    """A fresh profile for one source (None for gaitedge's own protocol)."""
    return module(name).profile(**options)
