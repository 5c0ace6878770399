"""BLE soak: link drops at random times through the emulated BlueZ, bleak's real backend.

    python bench/ble.py --json [--drops 100] [--acquire-notify]

An emulated gaitedge device (the shipped HAPT demo recording, looped at real time, 50 Hz) is
served by ``firmware_bridge.ble_emulator`` on a private D-Bus; ``BleSource`` streams it through
bleak and bleak-retry-connector. While data flows, the link is dropped (a supervision timeout)
after a random 0.3-0.9 s, ``--drops`` times. Checked: exactly one reconnect per drop, every
outage a forward gap in stream time, every frame the device sent on a live link received
(``lost_samples_outside_outages``, from the device's and the host's sequence numbers), RSS flat.
A reconnect time runs from the drop to the first sample of the new connection.

Last line: ``{"drops", "reconnects", "median_reconnect_s", "p95_reconnect_s",
"lost_samples_outside_outages"}``; the line before it has the details (stream gaps, RSS growth,
watchdog timeouts, subscriptions).
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
    device: EmulatedBleDevice, flowing: asyncio.Event, drops: int, rng: random.Random, log: list
) -> None:
    """Wait for data, let it flow a random while, drop the link; ``drops`` times."""
    for _ in range(drops):
        await flowing.wait()
        await asyncio.sleep(rng.uniform(0.3, 0.9))
        flowing.clear()
        log.append(time.monotonic())
        device.drop_link()
    await flowing.wait()
    await asyncio.sleep(0.5)  # the last connection streams a while too


async def _stream(device: EmulatedBleDevice, drops: int, seed: int, notify_acquire: bool) -> dict:
    source = BleSource(
        device.address, watchdog_s=2.0, max_reconnects=5, notify_acquire=notify_acquire
    )
    flowing = asyncio.Event()
    drop_times: list[float] = []
    reconnect_s, gaps_s, rss = [], [], []
    received: set[int] = set()
    last_t = None
    dropper = asyncio.create_task(
        _drop_at_random(device, flowing, drops, random.Random(seed), drop_times)
    )
    async with source:
        async for chunk in source.chunks():
            received.add(chunk.seq)
            if chunk.new_connection and last_t is not None:
                reconnect_s.append(chunk.host_rx_s - drop_times[len(reconnect_s)])
                gaps_s.append(float(chunk.t_s[0] - last_t))
                rss.append(rss_mb())
            last_t = float(chunk.t_s[-1])
            flowing.set()
            if dropper.done():
                break
    dropper.result()
    return {
        "source": source,
        "received": received,
        "reconnect_s": reconnect_s,
        "gaps_s": gaps_s,
        "rss": rss,
    }


def soak(drops: int = 100, *, seed: int = 0, notify_acquire: bool = False) -> dict:
    """Run the soak; returns the JSON figures plus ``details``."""
    rec = read_recording(DEMO_RECORDING)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(loop=True, seed=seed))
    with emulated_bluez() as bluez:
        device = bluez.add_device(emulator, mtu=SOAK_MTU)
        run = asyncio.run(_stream(device, drops, seed, notify_acquire))
    source, stats = run["source"], device.stats
    spn = emulator.config.samples_per_frame
    sent = set(stats.sent_seqs)
    assert len(stats.sent_seqs) < 65536, "soak too long for unwrapped sequence numbers"
    reconnect_s = np.array(run["reconnect_s"])
    rss = run["rss"]
    details = {
        "min_stream_gap_s": round(min(run["gaps_s"]), 3),
        "min_reconnect_s": round(float(reconnect_s.min()), 3),
        "rss_growth_mb": round(rss[-1] - rss[len(rss) // 10], 2),
        "watchdog_timeouts": source.stats.watchdog_timeouts,
        "device_connects": stats.connects,
        "subscriptions": stats.start_notifies,
        "host_disconnects": stats.host_disconnects,
        "frames_sent": len(sent),
        "frames_received_not_sent": len(run["received"] - sent),
        "samples_per_notification": source.samples_per_notification,
    }
    return {
        "drops": stats.link_drops,
        "reconnects": source.stats.reconnects,
        "median_reconnect_s": round(float(np.median(reconnect_s)), 3),
        "p95_reconnect_s": round(float(np.percentile(reconnect_s, 95)), 3),
        "lost_samples_outside_outages": spn * len(sent - run["received"]),
        "details": details,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--drops", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--acquire-notify", action="store_true", help="AcquireNotify sockets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    start = time.perf_counter()
    result = soak(args.drops, seed=args.seed, notify_acquire=args.acquire_notify)
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
