"""Sources: serial, BLE and replay backends behind one interface, yielding SampleChunks."""

from gaitedge.sources.base import SampleChunk, Source, SourceStats
from gaitedge.sources.ble import BleSource, FoundDevice, scan
from gaitedge.sources.device import DeviceSource, IncompatibleDeviceError, SourceError
from gaitedge.sources.frames import ClockModel, FrameAssembler
from gaitedge.sources.replay import ReplaySource
from gaitedge.sources.serial import SerialSource

__all__ = [
    "BleSource",
    "ClockModel",
    "DeviceSource",
    "FoundDevice",
    "FrameAssembler",
    "IncompatibleDeviceError",
    "ReplaySource",
    "SampleChunk",
    "SerialSource",
    "Source",
    "SourceError",
    "SourceStats",
    "scan",
]
