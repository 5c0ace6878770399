"""Decode throughput of the wire protocol: serial ``StreamDecoder.feed`` and BLE notifications.

    python bench/protocol.py            # a table
    python bench/protocol.py --json     # the same, and one JSON object as the last line

The stream is realistic: walking-like IMU signals with sensor noise at 16 g / 2000 dps full
scale (so the bytes have the zeros COBS must handle), one DeviceInfo per 100 frames, fed in
4096-byte reads as from a serial port. Each figure is the best of ``--repeat`` runs, which
measures the code rather than the other jobs on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from firmware_bridge import (
    DeviceInfo,
    NotificationDecoder,
    SampleFrame,
    StreamDecoder,
    encode,
    encode_serial,
    si_to_counts,
)

INFO = DeviceInfo(device_id=1, sample_rate_millihz=100_000, accel_range_g=16, gyro_range_dps=2000)
READ_SIZE = 4096


def _imu(n_samples: int) -> np.ndarray:
    """[N, 6] walking-like signals in m/s² and rad/s, with noise."""
    rng = np.random.default_rng(0)
    t = np.arange(n_samples) / INFO.sample_rate_hz
    phase = 2 * np.pi * 1.8 * t
    base = np.column_stack(
        [np.sin(phase), 0.5 * np.cos(phase), 9.81 + 3 * np.sin(2 * phase)]
        + [2.0 * np.sin(phase + k) for k in range(3)]
    )
    return base + rng.normal(0, [0.05] * 3 + [0.01] * 3, base.shape)


def _frames(n_frames: int, samples_per_frame: int) -> list[SampleFrame]:
    counts = si_to_counts(_imu(n_frames * samples_per_frame), INFO)
    spf = samples_per_frame
    return [
        SampleFrame(i % 65536, (i * spf * 10_000) % 2**32, counts[i * spf : (i + 1) * spf])
        for i in range(n_frames)
    ]


def _best_time(run: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def bench_serial(n_frames: int, samples_per_frame: int, repeat: int) -> dict[str, float]:
    """Frames per second through ``StreamDecoder.feed`` in 4096-byte reads."""
    frames = _frames(n_frames, samples_per_frame)
    packets = [encode_serial(f) for f in frames]
    for k in range(0, len(packets), 100):
        packets.insert(k, encode_serial(INFO))
    stream = b"".join(packets)
    reads = [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]

    def run() -> None:
        decoder = StreamDecoder()
        for chunk in reads:
            decoder.feed(chunk)
        assert decoder.stats.messages_ok == len(packets) and decoder.stats.dropped_total == 0

    seconds = _best_time(run, repeat)
    return {
        "frames_per_s": n_frames / seconds,
        "samples_per_s": n_frames * samples_per_frame / seconds,
        "mbytes_per_s": len(stream) / seconds / 1e6,
    }


def bench_ble(n_frames: int, samples_per_frame: int, repeat: int) -> float:
    """Notifications per second through ``NotificationDecoder.decode``."""
    payloads = [encode(f) for f in _frames(n_frames, samples_per_frame)]

    def run() -> None:
        decoder = NotificationDecoder()
        for payload in payloads:
            decoder.decode(payload)
        assert decoder.stats.messages_ok == len(payloads)

    return n_frames / _best_time(run, repeat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--frames", type=int, default=50_000, help="frames per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the best counts")
    parser.add_argument("--samples-per-frame", type=int, default=4, help="headline batching")
    args = parser.parse_args(argv)

    headline = bench_serial(args.frames, args.samples_per_frame, args.repeat)
    by_spf = {n: bench_serial(args.frames, n, args.repeat)["frames_per_s"] for n in (1, 20)}
    ble_1 = bench_ble(args.frames, 1, args.repeat)  # default ATT MTU: one sample each
    ble_19 = bench_ble(args.frames, 19, args.repeat)  # ATT MTU 247
    result = {
        "frames_per_s": round(headline["frames_per_s"]),
        "samples_per_frame": args.samples_per_frame,
        "samples_per_s": round(headline["samples_per_s"]),
        "serial_mbytes_per_s": round(headline["mbytes_per_s"], 2),
        "serial_frames_per_s_1_sample": round(by_spf[1]),
        "serial_frames_per_s_20_samples": round(by_spf[20]),
        "ble_notifications_per_s_1_sample": round(ble_1),
        "ble_notifications_per_s_19_samples": round(ble_19),
        "frames": args.frames,
        "repeat": args.repeat,
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
