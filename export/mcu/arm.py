"""The generated library on a Cortex-M4F: cross-compiled with ``arm-none-eabi-gcc``, run on
QEMU's ``mps2-an386`` board (semihosting file I/O) and, for instruction counts, in unicorn.

QEMU has no instruction counter a guest can read (DWT_CYCCNT reads 0) and Debian ships no TCG
plugins, so instructions are counted in unicorn (QEMU's CPU core as a library): a block hook in
C (``c/count_hook.c``) adds each executed block's Thumb-2 instructions; the tests check it
against capstone's disassembly. Cycles are not measured anywhere;
``CYCLES_PER_INSTRUCTION`` turns instructions into a stated estimate only.
"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.mcu.generate import C_DIR, LIBRARY_SOURCES
from export.mcu.host import BuildError, compile_c, compiler, decision_dtype

ARCH_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
# -fno-math-errno lets sqrtf be the VSQRT instruction alone (no errno path into libm).
ARM_CFLAGS = (
    "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow",
    "-Wdouble-promotion", "-Wconversion", "-ffp-contract=off", "-fno-math-errno",
    "-ffunction-sections", "-fdata-sections",
)  # fmt: skip
FIRMWARE_DIR = C_DIR / "firmware"
QEMU_MACHINE = "mps2-an386"
# A Cortex-M4 retires most data-processing instructions in one cycle; loads, multiply-
# accumulates on loaded data and taken branches cost more. 1.3 is an estimate, not a measurement.
CYCLES_PER_INSTRUCTION = 1.3


def arm_gcc() -> str:
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        raise BuildError(
            "arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
        )
    return cc


def qemu() -> str:
    exe = shutil.which("qemu-system-arm")
    if exe is None:
        raise BuildError("qemu-system-arm not found: apt-get install qemu-system-arm")
    return exe


@dataclass(frozen=True)
class Footprint:
    """Bytes of the gaitedge library alone (its object files, before linking)."""

    text: int  # code and constants (.text + .rodata): flash
    data: int  # initialised data: flash and RAM
    bss: int  # zeroed data: RAM

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def static_ram_bytes(self) -> int:
        return self.data + self.bss


class ArmBuild:
    """The library and the reference application for ``mps2-an386``, built in ``build_dir``."""

    def __init__(self, src_dir: str | Path, build_dir: str | Path | None = None) -> None:
        src = Path(src_dir)
        self.dir = Path(build_dir) if build_dir is not None else src / "arm"
        self.dir.mkdir(parents=True, exist_ok=True)
        cc = arm_gcc()
        flags = [*ARCH_FLAGS, *ARM_CFLAGS, f"-I{src}"]
        self.objects = []
        for name in LIBRARY_SOURCES:
            obj = self.dir / name.replace(".c", ".o")
            compile_c([cc, *flags, "-c", str(src / name), "-o", str(obj)])
            self.objects.append(obj)
        self.elf = self.dir / "gaitedge_mps2.elf"
        app = [str(FIRMWARE_DIR / "startup.c"), str(FIRMWARE_DIR / "main.c")]
        compile_c(
            [cc, *flags, *app, *map(str, self.objects), "-nostartfiles", "--specs=nano.specs",
             "--specs=nosys.specs", f"-T{FIRMWARE_DIR / 'mps2_an386.ld'}", "-Wl,--gc-sections",
             "-o", str(self.elf), "-lm"]
        )  # fmt: skip
        self._check_no_libm()

    def _check_no_libm(self) -> None:
        """The FPU's own instructions only: no call into libm may survive linking."""
        nm = subprocess.run(
            ["arm-none-eabi-nm", str(self.elf)], capture_output=True, text=True, check=True
        ).stdout
        names = {line.split()[-1] for line in nm.splitlines() if line.strip()}
        libm = sorted(names & {"fmaf", "sqrtf", "expf", "logf", "sqrt", "exp", "fma", "floorf"})
        if libm:
            raise BuildError(f"the ARM build calls libm functions {libm}")

    def footprint(self) -> Footprint:
        """``arm-none-eabi-size`` of the library's objects (Berkeley: text includes rodata)."""
        out = subprocess.run(
            ["arm-none-eabi-size", "-t", *map(str, self.objects)],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        text, data, bss = (int(v) for v in out[-1].split()[:3])
        return Footprint(text, data, bss)

    def symbols(self) -> dict[str, int]:
        nm = subprocess.run(
            ["arm-none-eabi-nm", str(self.elf)], capture_output=True, text=True, check=True
        ).stdout
        out = {}
        for line in nm.splitlines():
            parts = line.split()
            if len(parts) == 3:
                out[parts[2]] = int(parts[0], 16)
        return out

    def run_qemu(
        self,
        *,
        imu: np.ndarray | None = None,
        mounting: np.ndarray | None = None,
        windows: np.ndarray | None = None,
        n_logits: int,
        timeout_s: float = 120,
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        """Run the application under QEMU: a recording (decisions) and/or windows (logits,
        probs), through semihosting files in a scratch directory."""
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if imu is not None:
                rot = np.eye(3) if mounting is None else np.asarray(mounting)
                (work / "mcu_stream.bin").write_bytes(
                    np.asarray(rot, "<f4").tobytes() + np.asarray(imu, "<f4").tobytes()
                )
            if windows is not None:
                (work / "mcu_windows.bin").write_bytes(np.asarray(windows, "<f4").tobytes())
            cmd = [
                qemu(), "-M", QEMU_MACHINE, "-nographic", "-monitor", "none", "-serial", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(self.elf),
            ]  # fmt: skip
            result = subprocess.run(cmd, cwd=work, capture_output=True, timeout=timeout_s)
            if result.returncode != 0:
                raise BuildError(
                    f"QEMU exited with {result.returncode}: {result.stderr.decode()[-500:]}"
                )
            decisions = logits = None
            if imu is not None:
                raw = (work / "mcu_decisions.bin").read_bytes()
                decisions = np.frombuffer(raw, decision_dtype(n_logits)).copy()
            if windows is not None:
                raw = (work / "mcu_logits.bin").read_bytes()
                rec = np.dtype([("logits", "i1", (n_logits,)), ("probs", "<f4", (n_logits,))])
                out = np.frombuffer(raw, rec)
                logits = (out["logits"].copy(), out["probs"].copy())
            return decisions, logits


@dataclass(frozen=True)
class Count:
    instructions: int
    peak_stack_bytes: int


class _Counter(ctypes.Structure):
    _fields_ = [
        ("image", ctypes.c_void_p),
        ("image_size", ctypes.c_uint64),
        ("count", ctypes.c_uint64),
    ]


class Emulator:
    """The ARM build's functions called one at a time in unicorn, counting instructions.

    The count is exact for straight Thumb-2 code: a block hook (C, ``count_hook.c``) adds the
    instructions of every block unicorn executes. The peak stack is read from a painted stack.
    """

    RETURN = 0x0FFF_FFF0  # a return address in unmapped-code space: the call ends there
    PAINT = b"\xa5"

    def __init__(self, build: ArmBuild) -> None:
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4
        from unicorn.unicorn_py3.unicorn import uclib

        self.sym = build.symbols()
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)  # its FPU starts enabled
        self.uc.mem_map(0x0, 4 << 20)
        self.uc.mem_map(0x2000_0000, 4 << 20)
        self.uc.mem_map(self.RETURN & ~0xFFF, 0x1000)
        self._load(build.elf)
        hook_lib = build.dir / "count_hook.so"
        compile_c([compiler(), "-O2", "-fPIC", "-shared", str(C_DIR / "count_hook.c"),
                   "-o", str(hook_lib)])  # fmt: skip
        self._hook_lib = ctypes.CDLL(str(hook_lib))
        self._image = ctypes.create_string_buffer(self.read(0, self.sym["__data_load"]))
        self._counter = _Counter(ctypes.cast(self._image, ctypes.c_void_p), len(self._image), 0)
        handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(
            self.uc._uch, ctypes.byref(handle), UC_HOOK_BLOCK,
            ctypes.cast(self._hook_lib.ge_count_block, ctypes.c_void_p),
            ctypes.cast(ctypes.pointer(self._counter), ctypes.c_void_p), 1, 0,
        )  # fmt: skip
        if status != 0:
            raise BuildError(f"unicorn refused the counting hook (error {status})")
        self.call("ge_init")

    def _load(self, elf: Path) -> None:
        """PT_LOAD segments at their load addresses, then .data copied and .bss cleared."""
        raw = elf.read_bytes()
        phoff = struct.unpack_from("<I", raw, 28)[0]
        phentsize, phnum = struct.unpack_from("<HH", raw, 42)
        for i in range(phnum):
            p_type, offset, _, paddr, filesz = struct.unpack_from("<5I", raw, phoff + i * phentsize)
            if p_type == 1 and filesz:
                self.uc.mem_write(paddr, raw[offset : offset + filesz])
        s = self.sym
        data = self.read(s["__data_load"], s["__data_end"] - s["__data_start"])
        self.uc.mem_write(s["__data_start"], data)
        self.uc.mem_write(s["__bss_start"], bytes(s["__bss_end"] - s["__bss_start"]))

    def write(self, name: str, data: bytes, offset: int = 0) -> None:
        self.uc.mem_write(self.sym[name] + offset, data)

    def read(self, address: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(address, n))

    def call(self, name: str, *args: int) -> Count:
        """Call ``name(args...)`` (integer/pointer arguments) on a freshly painted stack."""
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_SP

        bottom, top = self.sym["__stack_bottom"], self.sym["__stack_top"]
        self.uc.mem_write(bottom, self.PAINT * (top - bottom))
        for i, a in enumerate(args):
            self.uc.reg_write(UC_ARM_REG_R0 + i, a)
        self.uc.reg_write(UC_ARM_REG_SP, top)
        self.uc.reg_write(UC_ARM_REG_LR, self.RETURN | 1)
        self._counter.count = 0
        self.uc.emu_start(self.sym[name] | 1, self.RETURN)
        stack = self.read(bottom, top - bottom)
        used = top - bottom - (len(stack) - len(stack.lstrip(self.PAINT)))
        return Count(int(self._counter.count), used)
