"""BLE soak: link drops at random times through the emulated BlueZ, bleak's real backend.

    python bench/ble.py --json [--drops 100] [--silent-drops 20] [--acquire-notify]

An emulated gaitedge device (the shipped HAPT demo recording, looped at real time, 50 Hz) is
served by ``firmware_bridge.ble_emulator`` on a private D-Bus; ``BleSource`` (its shipped
watchdog) streams it through bleak and bleak-retry-connector. While data flows, the link is
lost after a random 0.3-0.9 s: ``--drops`` times signalled (the device stops answering and
BlueZ reports the loss after the supervision timeout, 0.42 s) and ``--silent-drops`` times
silently (never reported: the host's watchdog notices), in a random order. The device's
sequence number and clock run on through every outage.

Checked: exactly one reconnect per drop; every frame the device sent on a live link received
(``lost_samples_outside_outages``, from the device's and the host's sequence numbers); every
sample the device made from the host's first received frame to its last and that never
arrived (``lost_samples_total``, from the device's own record of every frame it made) counted
by the host (``lost_samples_counted``, ``SourceStats.lost_samples``): the two must be equal;
RSS flat. Reconnect times: ``median_reconnect_s``/``p95_reconnect_s`` from the drop to the
first sample of the new connection (signalled drops, as before), and from the last sample
received before the drop to that first sample, for signalled and silent drops.

Last line: ``{"drops", "reconnects", "median_reconnect_s", "p95_reconnect_s",
"lost_samples_outside_outages", "silent_drops", "lost_samples_total", "lost_samples_counted",
"reconnect_from_last_sample_p50_s", "reconnect_from_last_sample_p95_s",
"silent_reconnect_from_last_sample_p50_s", "silent_reconnect_from_last_sample_p95_s"}``
(``drops`` counts every link loss, silent ones included); the line before it has the details
(stream gaps, RSS growth, watchdog timeouts, subscriptions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import rss_mb
from firmware_bridge.ble_emulator import EmulatedBleDevice, emulated_bluez
from firmware_bridge.emulator import Emulator, EmulatorConfig
from gaitedge.demo import DEMO_RECORDING
from gaitedge.recording import read_recording
from gaitedge.sources import BleSource

# An ATT MTU of 47 puts 3 samples in a notification: ~17 notifications/s at 50 Hz, so each
# short connection between drops carries enough frames to show any loss.
SOAK_MTU = 47


async def _drop_at_random(
    device: EmulatedBleDevice, flowing: asyncio.Event, kinds: list[str], rng: random.Random, log
) -> None:
    """Wait for data, let it flow a random while, lose the link; once per entry of ``kinds``."""
    for kind in kinds:
        await flowing.wait()
        await asyncio.sleep(rng.uniform(0.3, 0.9))
        flowing.clear()
        log.append(time.monotonic())
        device.drop_link(silent=kind == "silent")
    await flowing.wait()
    await asyncio.sleep(0.5)  # the last connection streams a while too


async def _stream(
    device: EmulatedBleDevice, kinds: list[str], seed: int, notify_acquire: bool, **source
) -> dict:
    source = BleSource(device.address, max_reconnects=5, notify_acquire=notify_acquire, **source)
    flowing = asyncio.Event()
    drop_times: list[float] = []
    from_drop_s, from_last_s, gaps_s, rss = [], [], [], []
    received: dict[int, int] = {}  # seq -> samples
    last_t = last_rx = None
    dropper = asyncio.create_task(
        _drop_at_random(device, flowing, kinds, random.Random(seed), drop_times)
    )
    async with source:
        async for chunk in source.chunks():
            received[chunk.seq] = len(chunk.t_s)
            if chunk.new_connection and last_t is not None:
                from_drop_s.append(chunk.host_rx_s - drop_times[len(from_drop_s)])
                from_last_s.append(chunk.host_rx_s - last_rx)
                gaps_s.append(float(chunk.t_s[0] - last_t))
                rss.append(rss_mb())
            last_t, last_rx = float(chunk.t_s[-1]), chunk.host_rx_s
            if len(from_drop_s) == len(drop_times):  # not the last link's queued chunks
                flowing.set()
            if dropper.done():
                break
    dropper.result()
    return {
        "source": source,
        "received": received,
        "from_drop_s": from_drop_s,
        "from_last_s": from_last_s,
        "gaps_s": gaps_s,
        "rss": rss,
    }


def lost_samples_total(made: list[tuple[int, int]], received: dict[int, int]) -> int:
    """Samples of the frames a device made (``LinkStats.made``: seq, samples) from the first
    frame the host received to its last that never arrived (``received``: seq -> samples).
    Sequence numbers must not have wrapped (under 65536 frames)."""
    first, last = min(received), max(received)
    made_between = sum(n for seq, n in made if first <= seq <= last)
    return made_between - sum(received.values())


def _quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    a = np.array(values)
    return round(float(np.median(a)), 3), round(float(np.percentile(a, 95)), 3)


def soak(
    drops: int = 100,
    *,
    silent_drops: int = 20,
    seed: int = 0,
    notify_acquire: bool = False,
    **source,
) -> dict:
    """Run the soak; returns the JSON figures plus ``details``. ``source``: BleSource options
    (the shipped defaults if none)."""
    rec = read_recording(DEMO_RECORDING)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(loop=True, seed=seed))
    kinds = ["signalled"] * drops + ["silent"] * silent_drops
    random.Random(seed).shuffle(kinds)
    with emulated_bluez() as bluez:
        device = bluez.add_device(emulator, mtu=SOAK_MTU)
        run = asyncio.run(_stream(device, kinds, seed, notify_acquire, **source))
    source, stats = run["source"], device.stats
    spn = emulator.config.samples_per_frame
    sent = set(stats.sent_seqs)
    assert len(stats.made) < 65536, "soak too long for unwrapped sequence numbers"
    received = run["received"]
    signalled = [i for i, kind in enumerate(kinds) if kind == "signalled"]
    silent = [i for i, kind in enumerate(kinds) if kind == "silent"]
    from_drop = [run["from_drop_s"][i] for i in signalled]
    from_last = [run["from_last_s"][i] for i in signalled]
    silent_from_last = [run["from_last_s"][i] for i in silent]
    rss = run["rss"]
    details = {
        "min_stream_gap_s": round(min(run["gaps_s"]), 3),
        "min_reconnect_s": round(min(from_drop), 3) if from_drop else None,
        "rss_growth_mb": round(rss[-1] - rss[len(rss) // 10], 2),
        "watchdog_timeouts": source.stats.watchdog_timeouts,
        "device_connects": stats.connects,
        "subscriptions": stats.start_notifies,
        "host_disconnects": stats.host_disconnects,
        "frames_sent": len(sent),
        "frames_received_not_sent": len(set(received) - sent),
        "frames_lost_on_dead_links": stats.dead_link,
        "device_restarts_seen": source.stats.device_restarts,
        "samples_per_notification": source.samples_per_notification,
        "watchdog_s": source.watchdog_s,
    }
    p50, p95 = _quantiles(from_drop)
    last_p50, last_p95 = _quantiles(from_last)
    silent_p50, silent_p95 = _quantiles(silent_from_last)
    return {
        "drops": stats.link_drops,
        "reconnects": source.stats.reconnects,
        "median_reconnect_s": p50,
        "p95_reconnect_s": p95,
        "lost_samples_outside_outages": spn * len(sent - set(received)),
        "silent_drops": stats.silent_drops,
        "lost_samples_total": lost_samples_total(stats.made, received),
        "lost_samples_counted": source.stats.lost_samples,
        "reconnect_from_last_sample_p50_s": last_p50,
        "reconnect_from_last_sample_p95_s": last_p95,
        "silent_reconnect_from_last_sample_p50_s": silent_p50,
        "silent_reconnect_from_last_sample_p95_s": silent_p95,
        "details": details,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--drops", type=int, default=100, help="signalled link losses")
    parser.add_argument("--silent-drops", type=int, default=20, help="never reported by BlueZ")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--acquire-notify", action="store_true", help="AcquireNotify sockets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    start = time.perf_counter()
    result = soak(
        args.drops,
        silent_drops=args.silent_drops,
        seed=args.seed,
        notify_acquire=args.acquire_notify,
    )
    details = result.pop("details") | {
        "wall_s": round(time.perf_counter() - start, 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(details))
        print(json.dumps(result))
        return
    for key, value in (result | details).items():
        print(f"{key:<30} {value}")


if __name__ == "__main__":
    main()
