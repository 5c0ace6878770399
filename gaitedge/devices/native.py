"""gaitedge's own GATT service (``firmware_bridge/PROTOCOL.md``): decoded by the transport itself
(``gaitedge.sources.ble`` with ``firmware_bridge.NotificationDecoder``); listed here so that
detection and ``gaitedge scan`` know it."""

from __future__ import annotations

from firmware_bridge.protocol import DEVICE_NAME_PREFIX, SERVICE_UUID

NAME = "gaitedge"
TITLE = "a device speaking gaitedge's own protocol (firmware with the C encoder, the emulator)"
NEEDS = "firmware built on firmware_bridge/c"
SERVICES = (str(SERVICE_UUID).lower(),)
NAME_PREFIXES = (DEVICE_NAME_PREFIX,)


def profile(**_options) -> None:
    return None
