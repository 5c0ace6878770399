"""An emulated BlueZ: ``org.bluez`` on a private D-Bus system bus, serving gaitedge devices.

bleak's Linux backend talks to BlueZ (``bluetoothd``) over the D-Bus system bus. This module is
that other end: a private ``dbus-daemon`` (Debian's ``dbus`` package) and a small ``org.bluez``
service on ``dbus-fast`` whose devices are fed by :class:`firmware_bridge.emulator.Emulator`,
so bleak's own scanner, client, service discovery and StartNotify/AcquireNotify code runs
unchanged, as it would against a radio::

    with PrivateSystemBus(), EmulatedBlueZ() as bluez:   # DBUS_SYSTEM_BUS_ADDRESS points here
        device = bluez.add_device(Emulator(t, imu, EmulatorConfig(loop=True)))
        ...  # BleakScanner / BleakClient / gaitedge.sources.BleSource(device.address)
        device.drop_link()  # the device stops answering; BlueZ reports the loss after the
                            # supervision timeout
        device.drop_link(silent=True)  # ... and never reports it: the host's watchdog must

What it emulates, as BlueZ 5.6x presents it on D-Bus:

* ``Adapter1`` at ``/org/bluez/hci0`` (powered, central role): StartDiscovery/StopDiscovery
  (each advertising device's RSSI is refreshed every ``advertising_interval_s`` while anyone
  discovers, which is what bleak's scanner reports), SetDiscoveryFilter, RemoveDevice.
* ``Device1`` per device (name ``gaitedge-<id>``, the gaitedge service UUID advertised):
  Connect, Disconnect, ``Connected``, ``ServicesResolved``; the GATT objects appear on connect
  and vanish on disconnect (an unbonded device: no GATT cache survives a link).
* ``GattService1`` and ``GattCharacteristic1`` for the gaitedge service: DeviceInfo (read) and
  Samples (notify), with ``MTU``; ReadValue, StartNotify/StopNotify (values as
  ``PropertiesChanged`` signals) and AcquireNotify (a SOCK_SEQPACKET socket, one notification
  per packet). The device puts ``samples_per_notification(mtu)`` samples in each frame.
* Vendor sensors (:meth:`EmulatedBlueZ.add_peripheral`, ``firmware_bridge.peripherals``): any
  GATT table, with WriteValue and indications, answered and streamed by the peripheral.
* Faults: everything the Emulator injects (drops, corruption, jitter, drift, ``disconnect_after_s``
  = the device switching off), plus :meth:`EmulatedBleDevice.drop_link` (link loss, with an
  optional outage during which Connect waits, as for a device out of range),
  :meth:`EmulatedBleDevice.restart` (the device reboots: its sequence number and clock start
  over) and :meth:`EmulatedBleDevice.fail_next_connects` (BlueZ's
  ``le-connection-abort-by-local``). A lost link goes dead at once (nothing more arrives) and
  BlueZ reports it (``Connected`` false) when the connection's supervision timeout runs out
  (``supervision_timeout_s``, default 0.42 s: Linux's default LE supervision timeout), or, for a
  silent drop, never: the host notices by its own watchdog and disconnects. The device's
  sequence number and clock run on through an outage; every frame it makes is recorded
  (``LinkStats.made``), delivered or not.

Not emulated: the radio itself (connection events, link-layer retransmission, RSSI physics),
pairing and bonding, GATT descriptors (the CCCD), discovery filters
(every advertising device is reported), BlueZ dropping devices from its cache after discovery
(known devices stay), per-D-Bus-client notification sessions (one subscription per link), the
per-client ``InProgress`` discovery error, AdvertisementMonitor (passive scanning), connection
slots, and more than one adapter.

No ``from __future__ import annotations`` here: dbus-fast reads D-Bus signatures from the
annotations (``-> "b"``) at class creation.
"""

import asyncio
import contextlib
import logging
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from dbus_fast import BusType, DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method

from firmware_bridge.emulator import Emulator
from firmware_bridge.peripherals.base import Peripheral
from firmware_bridge.protocol import (
    DEVICE_INFO_CHAR_UUID,
    SAMPLES_CHAR_UUID,
    SERVICE_UUID,
    ProtocolError,
    SampleFrame,
    encode,
    parse_message,
    samples_per_notification,
)

log = logging.getLogger(__name__)

BLUEZ_SERVICE = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
ADAPTER_ADDRESS = "00:1A:7D:DA:71:13"
SYSTEM_BUS_ENV = "DBUS_SYSTEM_BUS_ADDRESS"
ERROR_FAILED = "org.bluez.Error.Failed"
ERROR_NOT_CONNECTED = "org.bluez.Error.NotConnected"
ERROR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
# What BlueZ >= 5.62 answers when the controller gave up on an LE connection it had started.
LE_ABORT = "le-connection-abort-by-local"
# Linux's default LE supervision timeout (hdev->le_supv_timeout = 0x002a, in 10 ms units): how
# long after a device stops answering BlueZ reports the link lost.
SUPERVISION_TIMEOUT_S = 0.42
# Battery Service: what the "not a gaitedge device" emulation offers instead.
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class PrivateSystemBus:
    """A ``dbus-daemon`` of its own standing in for the system bus, while open.

    Entering starts the daemon and points ``DBUS_SYSTEM_BUS_ADDRESS`` at it (bleak and
    dbus-fast read it on every connect); leaving restores the variable and stops the daemon.
    """

    def __init__(self) -> None:
        self.address: str | None = None
        self._dir: str | None = None
        self._proc: subprocess.Popen | None = None
        self._saved_env: str | None = None

    def start(self) -> "PrivateSystemBus":
        daemon = shutil.which("dbus-daemon") or shutil.which("dbus-daemon", path="/usr/bin")
        if daemon is None:
            raise RuntimeError("dbus-daemon not found: install the 'dbus' package")
        self._dir = tempfile.mkdtemp(prefix="gaitedge-dbus-")
        config = os.path.join(self._dir, "bus.conf")
        with open(config, "w") as f:
            f.write(_BUS_CONFIG.format(socket=os.path.join(self._dir, "system_bus_socket")))
        self._proc = subprocess.Popen(
            [daemon, f"--config-file={config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # e.g. "Failed to set fd limit" when not root
            text=True,
        )
        self.address = self._proc.stdout.readline().strip()  # printed once it listens
        if not self.address:
            self.stop()
            raise RuntimeError("dbus-daemon did not start")
        self._saved_env = os.environ.get(SYSTEM_BUS_ENV)
        os.environ[SYSTEM_BUS_ENV] = self.address
        return self

    def stop(self) -> None:
        if self.address is not None and os.environ.get(SYSTEM_BUS_ENV) == self.address:
            if self._saved_env is None:
                os.environ.pop(SYSTEM_BUS_ENV, None)
            else:
                os.environ[SYSTEM_BUS_ENV] = self._saved_env
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5.0)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "PrivateSystemBus":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def device_path(address: str) -> str:
    """BlueZ's object path for a device address on the emulated adapter."""
    return f"{ADAPTER_PATH}/dev_{address.upper().replace(':', '_')}"


@dataclass
class LinkStats:
    """What one emulated device did on the air, to check a host's counts against."""

    connects: int = 0
    link_drops: int = 0  # drop_link(), restart() and the device switching off
    silent_drops: int = 0  # of them, never reported by BlueZ (drop_link(silent=True))
    restarts: int = 0  # restart(): the device rebooted
    host_disconnects: int = 0  # Device1.Disconnect while connected
    aborted_connects: int = 0  # le-connection-abort-by-local answers
    start_notifies: int = 0  # StartNotify and AcquireNotify, one per subscription
    notifications: int = 0  # notifications that went out on a live, subscribed link
    not_sent: int = 0  # payloads the device made while nobody was subscribed
    dead_link: int = 0  # payloads made on a link already lost, before BlueZ or the host knew
    sent_seqs: list[int] = field(default_factory=list)  # seq of every frame that went out
    # (seq, samples) of every sample frame the device made: sent, unsent or lost on a dead link
    made: list[tuple[int, int]] = field(default_factory=list)


class _Adapter(ServiceInterface):
    def __init__(self, bluez: "EmulatedBlueZ") -> None:
        super().__init__("org.bluez.Adapter1")
        self._bluez = bluez
        self._sessions = 0  # discovery sessions; bleak may run several scanners at once

    @property
    def discovering(self) -> bool:
        return self._sessions > 0

    @method()
    def SetDiscoveryFilter(self, properties: "a{sv}"):
        pass

    @method()
    def StartDiscovery(self):
        self._sessions += 1
        if self._sessions == 1:
            self.emit_properties_changed({"Discovering": True})
            self._bluez._advertise()

    @method()
    def StopDiscovery(self):
        if self._sessions == 0:
            raise DBusError(ERROR_FAILED, "No discovery started")
        self._sessions -= 1
        if self._sessions == 0:
            self.emit_properties_changed({"Discovering": False})

    @method()
    async def RemoveDevice(self, device: "o"):
        await self._bluez._remove(device)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return ADAPTER_ADDRESS

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return "gaitedge-emulated-hci0"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return "gaitedge-emulated-hci0"

    @dbus_property(access=PropertyAccess.READ)
    def Powered(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> "b":
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> "as":
        return ["central", "peripheral"]

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return []


class _Device(ServiceInterface):
    def __init__(self, owner: "EmulatedBleDevice") -> None:
        super().__init__("org.bluez.Device1")
        self._owner = owner

    @method()
    async def Connect(self):
        await self._owner._connect()

    @method()
    async def Disconnect(self):
        await self._owner._host_disconnect()

    @method()
    def Pair(self):
        raise DBusError(ERROR_NOT_SUPPORTED, "Pairing is not emulated")

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return self._owner.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "random"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return self._owner.name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return self._owner.name

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> "o":
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> "b":
        return self._owner.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> "b":
        return self._owner.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return self._owner.advertised_uuids

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> "n":
        return self._owner.rssi

    @dbus_property(access=PropertyAccess.READ)
    def TxPower(self) -> "n":
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> "a{sv}":
        return {}


class _GattService(ServiceInterface):
    def __init__(self, uuid: str, device: str, handle: int) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid, self._device, self._handle = uuid, device, handle

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> "o":
        return self._device

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> "ao":
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> "q":
        return self._handle


class _Characteristic(ServiceInterface):
    """One characteristic of the current link; a notifying one streams the device's frames."""

    def __init__(
        self, owner: "EmulatedBleDevice", uuid: str, service: str, handle: int, flags: list[str]
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._owner, self._uuid, self._service = owner, uuid, service
        self._handle, self._flags = handle, flags
        self.notifying = False
        self._socket: socket.socket | None = None  # our end of an AcquireNotify socket
        self._value = b""

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        self._owner._check_link()
        if "read" not in self._flags:
            raise DBusError("org.bluez.Error.NotPermitted", "Read not permitted")
        return self._owner._read(self._uuid)

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}"):
        self._owner._check_link()
        if "write" not in self._flags and "write-without-response" not in self._flags:
            raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")
        self._owner._write(self._uuid, bytes(value))

    @method()
    def StartNotify(self):
        self._owner._check_link()
        if "notify" not in self._flags and "indicate" not in self._flags:
            raise DBusError(ERROR_NOT_SUPPORTED, "Operation is not supported")
        if not self.notifying:
            self._owner.stats.start_notifies += 1
            self.notifying = True
            self.emit_properties_changed({"Notifying": True})

    @method()
    def StopNotify(self):
        if self.notifying and self._socket is None:
            self.notifying = False
            self.emit_properties_changed({"Notifying": False})

    @method()
    def AcquireNotify(self, options: "a{sv}") -> "hq":
        self._owner._check_link()
        if "notify" not in self._flags or self.notifying:
            raise DBusError("org.bluez.Error.NotPermitted", "Notify acquired or not supported")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._socket = ours
        self._owner.stats.start_notifies += 1
        self.notifying = True
        self.emit_properties_changed({"NotifyAcquired": True, "Notifying": True})
        fd = theirs.detach()
        # dbus-fast sends the descriptor after this returns; ours to close once it has gone.
        asyncio.get_running_loop().call_later(1.0, _close_fd, fd)
        return [fd, self._owner.mtu]

    def notify(self, payload: bytes) -> bool:
        """Send one notification to the subscriber; False if there is none (or it left)."""
        if not self.notifying:
            return False
        if self._socket is None:
            self._value = payload
            self.emit_properties_changed({"Value": payload})
            return True
        try:
            self._socket.send(payload)
        except BlockingIOError:
            return False  # the host is not reading: the notification is lost, as on air
        except OSError:  # the host closed its end (bleak's stop_notify)
            self.release()
            return False
        return True

    def release(self) -> None:
        """The link is gone: an acquired socket closes, which is how bleak notices."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.notifying = False

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":
        return self._service

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":
        return self._value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> "b":
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def NotifyAcquired(self) -> "b":
        return self._socket is not None

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":
        return self._flags

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> "q":
        return self._owner.mtu

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> "q":
        return self._handle


class _PatientSocket:
    """A bus socket whose sends wait for room instead of failing with EAGAIN."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __getattr__(self, name: str):
        return getattr(self._sock, name)

    def send(self, data) -> int:
        return self._retry(self._sock.send, data)

    def sendmsg(self, *args) -> int:
        return self._retry(self._sock.sendmsg, *args)

    def _retry(self, send, *args) -> int:
        while True:
            try:
                return send(*args)
            except BlockingIOError:  # dbus-daemon has not read the last ones yet
                select.select([], [self._sock], [], 1.0)


def _wait_when_full(bus: MessageBus) -> None:
    """dbus-fast's writer takes a full socket (EAGAIN) for a lost connection (the bug reported
    as python-dbus-next #153, which dbus-fast inherited): a burst of notifications faster than
    dbus-daemon reads them (thousands a second while the machine is busy) ended the emulated
    BlueZ's bus, and with it every device. BlueZ's own D-Bus library waits for the socket to
    drain; so does the emulated BlueZ's, on its own thread: notifications queue behind it (the
    player thread keeps its clock) and nothing is lost or reordered."""
    writer = getattr(bus, "_writer", None)
    if writer is not None and isinstance(getattr(writer, "sock", None), socket.socket):
        writer.sock = _PatientSocket(writer.sock)
    else:  # a dbus-fast whose writer is built otherwise: left as it is
        log.warning("dbus-fast's bus writer not recognised: a full bus socket may end the bus")


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class EmulatedBleDevice:
    """One emulated wearable: advertising, connectable, streaming its Emulator's frames.

    Made by :meth:`EmulatedBlueZ.add_device`. The Emulator plays in its own thread from the
    moment the device is added (the device's clock runs whether or not a host listens); frames
    made while no host is subscribed are not sent, as firmware without a buffer would do.
    Thread-safe controls: :meth:`drop_link`, :meth:`fail_next_connects`.
    """

    def __init__(
        self,
        bluez: "EmulatedBlueZ",
        emulator: Emulator,
        address: str,
        *,
        mtu: int,
        rssi: int,
        gaitedge_service: bool,
        connect_latency_s: float,
        name: str | None = None,
    ) -> None:
        spn = samples_per_notification(mtu)
        if spn < 1:
            raise ValueError(f"an ATT MTU of {mtu} carries no sample")
        self.emulator = emulator
        # The firmware fills each notification as the negotiated MTU allows (PROTOCOL.md 6.2).
        emulator.config = replace(emulator.config, samples_per_frame=spn)
        service = str(SERVICE_UUID) if gaitedge_service else BATTERY_SERVICE_UUID
        self._init_link(bluez, address, name or emulator.info.name, service, mtu, rssi)
        self.connect_latency_s = connect_latency_s

    def _init_link(
        self, bluez: "EmulatedBlueZ", address: str, name: str, service: str, mtu: int, rssi: int
    ) -> None:
        """The link state every emulated device has (the gaitedge device and a vendor's)."""
        self.address = address.upper()
        self.name = name
        self.path = device_path(self.address)
        self.mtu, self.rssi = mtu, rssi
        self._base_rssi, self._adverts = rssi, 0
        self.service_uuid = service
        self.stats = LinkStats()
        self.connected = False
        self.services_resolved = False
        self._bluez = bluez
        self._interface = _Device(self)
        self._gatt: list[tuple[str, ServiceInterface]] = []
        self._samples: _Characteristic | None = None
        self._reachable = asyncio.Event()
        self._reachable.set()
        self._switched_off = False
        self._pending_connects: list[asyncio.Future] = []
        self._fail_connects = 0
        self.supervision_timeout_s = SUPERVISION_TIMEOUT_S
        self._dead = False  # the link is lost but not yet known to be (supervision, silence)
        self._link_id = 0  # one per connection, so a late supervision timeout hits no other
        self._stop = threading.Event()  # the device is removed for good
        self._run_stop = threading.Event()  # stops the current playback (removal or reboot)
        self._rebooting = False
        self._player = threading.Thread(target=self._play, name=f"ble-{self.name}", daemon=True)

    def drop_link(self, outage_s: float = 0.0, *, silent: bool = False) -> None:
        """Lose the radio link now: the device stops answering, and is unreachable for
        ``outage_s``. BlueZ reports the loss ``supervision_timeout_s`` later; with ``silent``,
        never (the host's watchdog has to notice, and disconnect)."""
        self._bluez._call(self._drop, outage_s, silent)

    def restart(self, outage_s: float = 0.0) -> None:
        """The device reboots: the link is lost (reported after the supervision timeout), it is
        unreachable for ``outage_s``, and it streams again from its first frame (sequence
        number 0, clock at its start)."""
        self._bluez._call(self._drop, outage_s, False)
        self._bluez._call(self._reboot)

    def _reboot(self) -> None:
        self.stats.restarts += 1
        self._rebooting = True
        self._run_stop.set()

    def _halt(self) -> None:
        self._stop.set()
        self._run_stop.set()

    def fail_next_connects(self, n: int) -> None:
        """The next ``n`` Connect attempts end in ``le-connection-abort-by-local``."""
        self._bluez._call(self._set_failures, n)

    def _set_failures(self, n: int) -> None:
        self._fail_connects = n

    def _play(self) -> None:
        while True:
            stats = self.emulator.play(self._write_threadsafe, self._run_stop, encode=encode)
            if self._stop.is_set() or not self._rebooting:
                break
            self._rebooting = False  # restart(): play again from the first frame
            self._run_stop.clear()
        if stats.disconnected:  # EmulatorConfig.disconnect_after_s: the device switched off
            self._bluez._call(self._switch_off)

    def _write_threadsafe(self, payload: bytes) -> int:
        if self._stop.is_set():
            return 0
        self._bluez._call(self._notify, payload)
        return len(payload)

    def _notify(self, payload: bytes) -> None:
        frame = None
        with contextlib.suppress(ProtocolError):
            message = parse_message(payload)
            if isinstance(message, SampleFrame):
                frame = message
                self.stats.made.append((message.seq, len(message.samples)))
        if self._dead:
            self.stats.dead_link += 1
            return
        if self._samples is None or not self._samples.notify(payload):
            self.stats.not_sent += 1
            return
        self.stats.notifications += 1
        if frame is not None:
            self.stats.sent_seqs.append(frame.seq)

    @property
    def advertised_uuids(self) -> list[str]:
        return [self.service_uuid]

    def _check_link(self) -> None:
        if not self.connected:
            raise DBusError(ERROR_NOT_CONNECTED, "Not Connected")
        if self._dead:  # the device no longer answers: BlueZ's ATT request times out
            raise DBusError(ERROR_FAILED, "Operation failed with ATT error: timeout")

    def _write(self, uuid: str, data: bytes) -> None:
        raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")

    def _read(self, uuid: str) -> bytes:
        if uuid == str(DEVICE_INFO_CHAR_UUID):
            return encode(self.emulator.info)
        return bytes([100])  # a battery level, for the non-gaitedge device

    async def _connect(self) -> None:
        if self.connected:
            return
        await asyncio.sleep(self.connect_latency_s)
        if self._fail_connects > 0:
            self._fail_connects -= 1
            self.stats.aborted_connects += 1
            # BlueZ reports the link up, then down, around the error (bleak waits for both).
            self._set_connected(True)
            asyncio.get_running_loop().call_later(0.01, self._set_connected, False)
            raise DBusError(ERROR_FAILED, LE_ABORT)
        if not self._reachable.is_set():
            # Out of range or switched off: the controller keeps trying until the device is
            # back, or the host gives up and calls Disconnect, which cancels the attempt.
            cancel = asyncio.get_running_loop().create_future()
            self._pending_connects.append(cancel)
            back = asyncio.ensure_future(self._reachable.wait())
            try:
                await asyncio.wait({back, cancel}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                back.cancel()
                self._pending_connects.remove(cancel)
            if cancel.done():
                raise DBusError(ERROR_FAILED, "Operation was aborted")
        self.stats.connects += 1
        self._link_id += 1
        self._set_connected(True)
        self._export_gatt()
        self.services_resolved = True
        self._interface.emit_properties_changed({"ServicesResolved": True})

    async def _host_disconnect(self) -> None:
        for cancel in self._pending_connects:
            if not cancel.done():
                cancel.set_result(None)
        if self.connected:
            self.stats.host_disconnects += 1
            self._end_link()

    def _drop(self, outage_s: float, silent: bool = False) -> None:
        self._lose_link(silent)
        if outage_s > 0:
            self._reachable.clear()
            asyncio.get_running_loop().call_later(outage_s, self._back_in_range)

    def _back_in_range(self) -> None:
        if not self._switched_off:
            self._reachable.set()

    def _switch_off(self) -> None:
        self._switched_off = True
        self._reachable.clear()
        self._lose_link(silent=False)

    def _lose_link(self, silent: bool) -> None:
        """The device stops answering; BlueZ says so after the supervision timeout (or never)."""
        if not self.connected or self._dead:
            return
        self.stats.link_drops += 1
        self._dead = True
        if silent:
            self.stats.silent_drops += 1
            return
        link = self._link_id
        asyncio.get_running_loop().call_later(
            self.supervision_timeout_s, self._supervision_timeout, link
        )

    def _supervision_timeout(self, link: int) -> None:
        if self.connected and self._dead and self._link_id == link:
            self._end_link()

    def _end_link(self) -> None:
        self._dead = False
        if self._samples is not None:
            self._samples.release()
            self._samples = None
        self.services_resolved = False
        self._set_connected(False, ServicesResolved=False)
        for path, interface in reversed(self._gatt):
            self._bluez.bus.unexport(path, interface)
        self._gatt = []

    def _set_connected(self, connected: bool, **more: object) -> None:
        self.connected = connected
        self._interface.emit_properties_changed({"Connected": connected, **more})

    def _export_gatt(self) -> None:
        service = f"{self.path}/service000a"
        gatt: list[tuple[str, ServiceInterface]] = [
            (service, _GattService(self.service_uuid, self.path, 0x0A))
        ]
        if self.service_uuid == str(SERVICE_UUID):
            self._samples = _Characteristic(self, str(SAMPLES_CHAR_UUID), service, 0x0B, ["notify"])
            gatt.append((f"{service}/char000b", self._samples))
            info = _Characteristic(self, str(DEVICE_INFO_CHAR_UUID), service, 0x0D, ["read"])
            gatt.append((f"{service}/char000d", info))
        else:
            battery = _Characteristic(self, BATTERY_LEVEL_UUID, service, 0x0B, ["read"])
            gatt.append((f"{service}/char000b", battery))
        for path, interface in gatt:
            self._bluez.bus.export(path, interface)
        self._gatt = gatt

    def _advertise(self) -> None:
        if not self.connected and self._reachable.is_set():
            # A little variation around the device's own level, as on air (never past a
            # device 3 dB weaker: scan order by strength stays the devices' order).
            self._adverts += 1
            self.rssi = self._base_rssi - self._adverts % 3
            self._interface.emit_properties_changed({"RSSI": self.rssi})


class EmulatedPeripheralDevice(EmulatedBleDevice):
    """A vendor peripheral (``firmware_bridge.peripherals``) served with its own GATT table:
    its services and characteristics appear on connect; reads, writes and subscriptions go to
    the peripheral, which notifies (or indicates) on any of its characteristics."""

    def __init__(
        self,
        bluez: "EmulatedBlueZ",
        peripheral: "Peripheral",
        address: str,
        *,
        mtu: int,
        rssi: int,
        connect_latency_s: float,
    ) -> None:
        self.peripheral = peripheral
        self.emulator = None
        service = peripheral.services[0].uuid
        self._init_link(bluez, address, peripheral.name, service, mtu, rssi)
        self.connect_latency_s = connect_latency_s
        self._chars: dict[str, _Characteristic] = {}

    @property
    def advertised_uuids(self) -> list[str]:
        return list(self.peripheral.advertised_uuids)

    def restart(self, outage_s: float = 0.0) -> None:
        raise NotImplementedError("a vendor peripheral's reboot is not emulated")

    def _play(self) -> None:
        self.peripheral.play(self._stop)

    def _read(self, uuid: str) -> bytes:
        return self.peripheral.read(uuid)

    def _write(self, uuid: str, data: bytes) -> None:
        self.peripheral.write(uuid, data)

    def _send_threadsafe(self, uuid: str, payload: bytes, on_sent) -> None:
        self._bluez._call(self._send, uuid, payload, on_sent)

    def _send(self, uuid: str, payload: bytes, on_sent) -> None:
        if self._dead:
            self.stats.dead_link += 1
            return
        char = self._chars.get(uuid)
        if char is None or not char.notify(payload):
            self.stats.not_sent += 1
            return
        self.stats.notifications += 1
        on_sent()

    def _export_gatt(self) -> None:
        gatt: list[tuple[str, ServiceInterface]] = []
        handle = 0x0A
        for spec in self.peripheral.services:
            service = f"{self.path}/service{handle:04x}"
            gatt.append((service, _GattService(spec.uuid, self.path, handle)))
            for char_spec in spec.chars:
                handle += 1
                char = _Characteristic(self, char_spec.uuid, service, handle, list(char_spec.flags))
                self._chars[char_spec.uuid] = char
                gatt.append((f"{service}/char{handle:04x}", char))
            handle += 1
        for path, interface in gatt:
            self._bluez.bus.export(path, interface)
        self._gatt = gatt
        self.peripheral.connected(self._send_threadsafe)

    def _lose_link(self, silent: bool) -> None:
        if self.connected and not self._dead:
            self.peripheral.link_lost()
        super()._lose_link(silent)

    def _end_link(self) -> None:
        for char in self._chars.values():
            char.release()
        self._chars = {}
        self.peripheral.disconnected()
        super()._end_link()


class EmulatedBlueZ:
    """``org.bluez`` on the system bus (a :class:`PrivateSystemBus`), in a background thread.

    Args:
        adapter: export an adapter (False: a machine without Bluetooth, as bleak sees it).
        advertising_interval_s: how often advertising devices are seen while discovering.
    """

    def __init__(self, *, adapter: bool = True, advertising_interval_s: float = 0.1) -> None:
        self.adapter = adapter
        self.advertising_interval_s = advertising_interval_s
        self.devices: list[EmulatedBleDevice] = []
        self.bus: MessageBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._adapter: _Adapter | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._done: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="emulated-bluez", daemon=True)

    def start(self) -> "EmulatedBlueZ":
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise RuntimeError(f"emulated BlueZ did not start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("emulated BlueZ did not start within 10 s")
        return self

    def add_device(
        self,
        emulator: Emulator,
        *,
        address: str | None = None,
        mtu: int = 247,
        rssi: int = -55,
        gaitedge_service: bool = True,
        connect_latency_s: float = 0.02,
        name: str | None = None,
        supervision_timeout_s: float = SUPERVISION_TIMEOUT_S,
    ) -> EmulatedBleDevice:
        """A device that advertises from now on, and streams once a host subscribes.

        ``mtu`` is the ATT MTU every connection negotiates; ``gaitedge_service=False`` makes a
        device that offers only a Battery service instead (named ``name``, default the
        gaitedge name from the Emulator's DeviceInfo). ``supervision_timeout_s``: how long
        after a link is lost BlueZ reports it.
        """
        if address is None:
            n = len(self.devices)
            address = f"C0:FF:EE:00:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"
        device = EmulatedBleDevice(
            self,
            emulator,
            address,
            mtu=mtu,
            rssi=rssi,
            gaitedge_service=gaitedge_service,
            connect_latency_s=connect_latency_s,
            name=name,
        )
        device.supervision_timeout_s = supervision_timeout_s
        asyncio.run_coroutine_threadsafe(self._add(device), self._loop).result(5.0)
        device._player.start()
        self.devices.append(device)
        return device

    def add_peripheral(
        self,
        peripheral: "Peripheral",
        *,
        address: str | None = None,
        mtu: int = 247,
        rssi: int = -55,
        connect_latency_s: float = 0.02,
        supervision_timeout_s: float = SUPERVISION_TIMEOUT_S,
    ) -> "EmulatedPeripheralDevice":
        """A vendor device (``firmware_bridge.peripherals``) with its own GATT table."""
        if address is None:
            n = len(self.devices)
            address = f"C0:FF:EE:01:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"
        device = EmulatedPeripheralDevice(
            self, peripheral, address, mtu=mtu, rssi=rssi, connect_latency_s=connect_latency_s
        )
        device.supervision_timeout_s = supervision_timeout_s
        asyncio.run_coroutine_threadsafe(self._add(device), self._loop).result(5.0)
        device._player.start()
        self.devices.append(device)
        return device

    def stop(self) -> None:
        for device in self.devices:
            device._halt()
        for device in self.devices:
            device._player.join(5.0)
        if self._loop is not None and self._done is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(5.0)

    def __enter__(self) -> "EmulatedBlueZ":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn, *args: object) -> None:
        """Run ``fn(*args)`` on the emulator's event loop (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to do
            self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self.bus = await MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True).connect()
        _wait_when_full(self.bus)
        await self.bus.request_name(BLUEZ_SERVICE)
        if self.adapter:
            self._adapter = _Adapter(self)
            self.bus.export(ADAPTER_PATH, self._adapter)
        advertiser = asyncio.create_task(self._advertiser())
        self._ready.set()
        await self._done.wait()
        advertiser.cancel()
        for device in self.devices:
            if device.connected:
                device._end_link()
        self.bus.disconnect()
        await self.bus.wait_for_disconnect()

    async def _add(self, device: EmulatedBleDevice) -> None:
        self.bus.export(device.path, device._interface)

    async def _remove(self, path: str) -> None:
        for device in self.devices:
            if device.path == path:
                if device.connected:
                    device._end_link()
                self.bus.unexport(path, device._interface)
                # Seen again at its next advertisement, as BlueZ re-creates a device it hears.
                self.bus.export(path, device._interface)
                return
        raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")

    def _advertise(self) -> None:
        for device in self.devices:
            device._advertise()

    async def _advertiser(self) -> None:
        while True:
            await asyncio.sleep(self.advertising_interval_s)
            if self._adapter is not None and self._adapter.discovering:
                self._advertise()


@contextlib.contextmanager
def emulated_bluez(**kwargs: object) -> Iterator[EmulatedBlueZ]:
    """A private system bus with an :class:`EmulatedBlueZ` on it, for the length of a block."""
    with PrivateSystemBus(), EmulatedBlueZ(**kwargs) as bluez:
        yield bluez
