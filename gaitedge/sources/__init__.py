"""Sources: serial, BLE, replay and phones over the network (HTTP, MQTT, phyphox) backends
behind one interface, yielding SampleChunks."""

from gaitedge.sources.base import SampleChunk, Source, SourceStats
from gaitedge.sources.ble import BleSource, FoundDevice, scan
from gaitedge.sources.device import DeviceSource, IncompatibleDeviceError, SourceError
from gaitedge.sources.frames import ClockModel, FrameAssembler
from gaitedge.sources.http import HttpSource
from gaitedge.sources.mqtt import MqttSource
from gaitedge.sources.phone import PhoneHub, PushError, parse_push
from gaitedge.sources.phyphox import PhyphoxSource
from gaitedge.sources.replay import ReplaySource
from gaitedge.sources.serial import SerialSource

__all__ = [
    "BleSource",
    "ClockModel",
    "DeviceSource",
    "FoundDevice",
    "FrameAssembler",
    "HttpSource",
    "IncompatibleDeviceError",
    "MqttSource",
    "PhoneHub",
    "PhyphoxSource",
    "PushError",
    "ReplaySource",
    "SampleChunk",
    "SerialSource",
    "Source",
    "SourceError",
    "SourceStats",
    "parse_push",
    "scan",
]
