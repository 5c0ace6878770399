"""Firmware in the loop: the reference application (``mcu_app/``) on QEMU's ``mps2-an386``.

The bundle's generated C library (``export.mcu``), the protocol encoder (``c/``) and the
application are cross-compiled for a Cortex-M4F; QEMU runs the image with its UART on a
pseudo-terminal, so ``gaitedge listen --serial /dev/pts/N`` talks to the device as it would to a
wearable on USB. The IMU is a recording, read by the firmware through semihosting.

    python -m firmware_bridge.firmware_loop recording.csv [--results-only] [--mount none]

prints ``PTY /dev/pts/N`` as its first line (as ``firmware_bridge.emulator`` does) and starts
the CPU once a reader has opened the port, so nothing is sent into an unopened pty (QEMU drops
it). The device stays up after the recording, until stopped, so the host reads every frame.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.convert import si_to_counts
from firmware_bridge.protocol import (
    MAX_SAMPLES_PER_FRAME,
    MOUNTING_NEGATIVE,
    OUTPUT_NO_SAMPLES,
    OUTPUT_RESULTS,
    DeviceInfo,
)

APP_DIR = Path(__file__).resolve().parent / "mcu_app"
PROTOCOL_C_DIR = Path(__file__).resolve().parent / "c"
APP_SOURCES = ("app.c", "board_mps2_an386.c")
_MAGIC = b"GEI2"
_PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


class FirmwareError(RuntimeError):
    """The toolchain is missing, the build failed or QEMU did not start (its message says)."""


def build_firmware(bundle: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Generate the bundle's C library and link it with the application: the ELF's path."""
    from export.mcu.arm import ARCH_FLAGS, ARM_CFLAGS, FIRMWARE_DIR, arm_gcc
    from export.mcu.generate import LIBRARY_SOURCES, generate
    from export.mcu.host import BuildError, compile_c

    out = Path(out_dir)
    try:
        src = generate(bundle, out / "c")
        cc = arm_gcc()
        elf = out / "gaitedge_app.elf"
        sources = [src / s for s in LIBRARY_SOURCES] + [PROTOCOL_C_DIR / "gaitedge_protocol.c"]
        sources += [APP_DIR / s for s in APP_SOURCES] + [FIRMWARE_DIR / "startup.c"]
        compile_c(
            [cc, *ARCH_FLAGS, *ARM_CFLAGS, f"-I{src}", f"-I{PROTOCOL_C_DIR}", f"-I{APP_DIR}",
             *map(str, sources), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
             f"-T{FIRMWARE_DIR / 'mps2_an386.ld'}", "-Wl,--gc-sections", "-o", str(elf)]
        )  # fmt: skip
    except BuildError as exc:
        raise FirmwareError(str(exc)) from exc
    return elf


def mounting_bytes(mounting: tuple[int, int, int] | None) -> bytes:
    """Device info's three mounting bytes (PROTOCOL.md §4.3); zeros when not declared."""
    if mounting is None:
        return bytes(3)
    return bytes(abs(a) | (MOUNTING_NEGATIVE if a < 0 else 0) for a in mounting)


@dataclass(frozen=True)
class DeviceSetup:
    """What the emulated board declares and sends."""

    device_id: int = 0x5EA5F001
    accel_range_g: int = 16
    gyro_range_dps: int = 2000
    mounting: tuple[int, int, int] | None = (1, 2, 3)  # the body frame, declared
    raw_samples: bool = True  # sample frames too (needed by listen --shadow)
    samples_per_frame: int = 5

    @property
    def info(self) -> DeviceInfo:
        """The scale the host converts counts with (the rate comes from the firmware)."""
        return DeviceInfo(self.device_id, 1, self.accel_range_g, self.gyro_range_dps)

    @property
    def outputs(self) -> int:
        return OUTPUT_RESULTS | (0 if self.raw_samples else OUTPUT_NO_SAMPLES)


def imu_file(imu_si: np.ndarray, setup: DeviceSetup) -> tuple[bytes, np.ndarray]:
    """The firmware's input file (``board_mps2_an386.c``) for a recording [N, 6] in SI units
    at the library's ODR, and the int16 counts the device will read (what the host gets)."""
    if not 1 <= setup.samples_per_frame <= MAX_SAMPLES_PER_FRAME:
        raise ValueError(f"samples_per_frame must lie in 1..{MAX_SAMPLES_PER_FRAME}")
    counts = si_to_counts(imu_si, setup.info)
    head = _MAGIC + struct.pack(
        "<IHBB", setup.device_id, setup.gyro_range_dps, setup.accel_range_g, setup.outputs
    )
    head += mounting_bytes(setup.mounting) + bytes([setup.samples_per_frame])
    return head + counts.astype("<i2").tobytes(), counts


class FirmwareDevice:
    """The firmware running under QEMU with its UART on a pty (a context manager).

    ``path`` is the pty; :meth:`start_when_opened` releases the CPU once a reader holds the
    port (``SerialSource`` opens it exclusively, so a ``flock`` probe sees it); :meth:`done`
    returns (samples, sample frames, result frames) once the firmware has sent everything.
    """

    def __init__(self, elf: str | os.PathLike, imu_bin: bytes, workdir: str | os.PathLike) -> None:
        from export.mcu.arm import QEMU_MACHINE, qemu
        from export.mcu.host import BuildError

        self.workdir = Path(workdir)
        (self.workdir / "imu.bin").write_bytes(imu_bin)
        self._monitor_path = str(self.workdir / "monitor.sock")
        try:
            exe = qemu()
        except BuildError as exc:
            raise FirmwareError(str(exc)) from exc
        self.proc = subprocess.Popen(
            [exe, "-M", QEMU_MACHINE, "-nographic", "-S", "-kernel", str(elf),
             "-chardev", "pty,id=uart0", "-serial", "chardev:uart0",
             "-monitor", f"unix:{self._monitor_path},server,nowait",
             "-semihosting-config", "enable=on,target=native"],
            cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.path = self._read_pty_path()

    def _read_pty_path(self) -> str:
        line = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # QEMU 7 prints it on stdout
            match = _PTY_LINE.search(line)
            if match:
                return match.group(1).decode()
            if not line and self.proc.poll() is not None:
                break
        self.close()
        raise FirmwareError(f"QEMU did not open a pty: {line.decode(errors='replace').strip()}")

    def reader_attached(self) -> bool:
        """True once another process (or file) holds an exclusive lock on the pty. Read from
        ``/proc/locks``, which takes no lock: a probe that takes one, even for a moment, makes
        a reader's exclusive open that falls in that moment fail (pyserial's ``exclusive=True``
        does not wait), and a first open that fails ends ``listen``."""
        st = os.stat(self.path)
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        try:
            with open("/proc/locks") as f:
                held = [line.split() for line in f if "->" not in line]  # "->": a waiter
        except OSError:
            return self._lock_probe()
        return any(len(cells) > 5 and cells[1] == "FLOCK" and cells[5] == key for cells in held)

    def _lock_probe(self) -> bool:
        """:meth:`reader_attached` where there is no ``/proc/locks``: try the lock ourselves."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing also drops a lock we took
        return False

    def start(self) -> None:
        """Let the CPU run (it starts halted)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self._monitor_path)
            s.sendall(b"cont\n")
            time.sleep(0.05)

    def start_when_opened(self, timeout_s: float = 60.0) -> None:
        """Start once a reader has opened the port; FirmwareError if none comes in time."""
        deadline = time.monotonic() + timeout_s
        while not self.reader_attached():
            if self.proc.poll() is not None:
                raise FirmwareError(f"QEMU exited ({self.proc.returncode}) before a reader came")
            if time.monotonic() > deadline:
                raise FirmwareError(f"no reader opened {self.path} in {timeout_s:.0f} s")
            time.sleep(0.02)
        time.sleep(0.05)  # the reader's open() flushes input: let it finish first
        self.start()

    def done(self) -> tuple[int, int, int] | None:
        """(samples, sample frames, result frames) once the recording is through, else None."""
        path = self.workdir / "done.txt"
        text = path.read_text() if path.exists() else ""
        if not text.endswith("\n"):
            return None
        samples, frames, results = (int(v) for v in text.split())
        return samples, frames, results

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FirmwareDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path, help="a recording at the model's rate")
    parser.add_argument("--model", default=None, help="an INT8 bundle (default: the shipped)")
    parser.add_argument("--results-only", action="store_true", help="raw streaming off")
    parser.add_argument("--samples-per-frame", type=int, default=5)
    args = parser.parse_args(argv)
    from gaitedge.bundle import ContractError
    from gaitedge.engine import DEFAULT_MODEL
    from gaitedge.recording import RecordingError, read_recording

    setup = DeviceSetup(raw_samples=not args.results_only, samples_per_frame=args.samples_per_frame)
    try:
        rec = read_recording(args.recording)
        data, _ = imu_file(rec.imu, setup)
        with tempfile.TemporaryDirectory(prefix="gaitedge-fw-") as tmp:
            elf = build_firmware(args.model or DEFAULT_MODEL, tmp)
            with FirmwareDevice(elf, data, tmp) as device:
                print(f"PTY {device.path}", flush=True)
                device.start_when_opened(timeout_s=3600)
                while device.done() is None and device.proc.poll() is None:
                    time.sleep(0.2)
                print(f"done: {device.done()} (samples, sample frames, results)", flush=True)
                while device.proc.poll() is None:  # until stopped: the host reads it all
                    time.sleep(0.5)
    except (FirmwareError, RecordingError, ContractError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
