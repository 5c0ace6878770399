"""The generated C library built for this machine (the system ``cc``) and called via ctypes:
what the parity tests and ``bench/mcu.py`` compare against ONNX Runtime and the Python chain."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from export.mcu.generate import C_DIR, LIBRARY_SOURCES

# The flags firmware is held to: any warning fails the build. -std=c99 keeps floating-point
# contraction off, so only the explicit fmaf calls fuse (as MLAS's kernels do).
STRICT_CFLAGS = (
    "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wdouble-promotion",
    "-Wconversion", "-ffp-contract=off",
)  # fmt: skip


class BuildError(RuntimeError):
    """The C compiler is missing or rejected the generated code (its message included)."""


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BuildError("no C compiler found (install gcc, or set CC)")
    return cc


def compile_c(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])} ... failed:\n{result.stderr.strip()}")


def decision_dtype(n_logits: int) -> np.dtype:
    """``ge_decision_t`` as a numpy record (C layout: natural alignment)."""
    return np.dtype(
        [
            ("t_end", "<u4"),
            ("logits", "i1", (n_logits,)),
            ("probs", "<f4", (n_logits,)),
            ("activity", "u1"),
            ("activity_change", "i1"),
            ("activity_t_event", "<f4"),
            ("activity_p", "<f4"),
            ("fall", "u1"),
            ("fall_confirmed_by", "u1"),
            ("fall_t_event", "<u4"),
            ("fall_p", "<f4"),
            ("fall_impact_g", "<f4"),
        ],
        align=True,
    )


class HostBuild:
    """The library in ``src_dir`` compiled into a shared object under ``build_dir``."""

    def __init__(self, src_dir: str | Path, build_dir: str | Path | None = None) -> None:
        src = Path(src_dir)
        build = Path(build_dir) if build_dir is not None else src / "host"
        build.mkdir(parents=True, exist_ok=True)
        self.path = build / "libgaitedge_host.so"
        sources = [str(src / s) for s in LIBRARY_SOURCES] + [str(C_DIR / "host_harness.c")]
        compile_c(
            [compiler(), *STRICT_CFLAGS, "-O2", "-fPIC", "-shared", f"-I{src}", *sources,
             "-o", str(self.path), "-lm"]
        )  # fmt: skip
        self.lib = ctypes.CDLL(str(self.path))
        info = (ctypes.c_int * 8)()
        self.lib.ge_host_info(info)
        self.window, self.channels, self.n_logits, size, self.decimation, self.hop = info[:6]
        self.dtype = decision_dtype(self.n_logits)
        if self.dtype.itemsize != size:
            raise BuildError(
                f"ge_decision_t is {size} bytes here, the record {self.dtype.itemsize}"
            )

    def net(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[K, W, C] normalised windows -> int8 logits [K, L] and probabilities [K, L]."""
        x = np.ascontiguousarray(windows, np.float32)
        if x.shape[1:] != (self.window, self.channels):
            raise ValueError(f"windows must be [K, {self.window}, {self.channels}], got {x.shape}")
        logits = np.zeros((len(x), self.n_logits), np.int8)
        probs = np.zeros((len(x), self.n_logits), np.float32)
        self.lib.ge_host_net(ctypes.c_int(len(x)), _ptr(x), _ptr(logits), _ptr(probs))
        return logits, probs

    def stream(
        self, imu: np.ndarray, mounting: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A recording [N, 6] at the device's rate through ``ge_push`` from ``ge_init``:
        (decisions, their windows [K, W, C])."""
        x = np.ascontiguousarray(imu, np.float32)
        rot = None if mounting is None else np.ascontiguousarray(mounting, np.float32).ravel()
        max_out = len(x) // self.decimation // self.hop + 2
        decisions = np.zeros(max_out, self.dtype)
        windows = np.zeros((max_out, self.window, self.channels), np.float32)
        k = self.lib.ge_host_stream(
            ctypes.c_int(len(x)), _ptr(x), None if rot is None else _ptr(rot),
            ctypes.c_int(max_out), _ptr(decisions), _ptr(windows),
        )  # fmt: skip
        return decisions[:k], windows[:k]


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)
