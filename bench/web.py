"""The web view's cost to the pipeline: latency with 5 browsers' worth of clients vs none.

    python bench/web.py --json [--speed 10] [--seconds 120]

The shipped demo recording is replayed paced (``--speed`` times real time, a chunk every
20 ms, as a live device delivers them) through the runtime's pipeline twice in one run: once
without ``--web``, once with a :class:`~gaitedge.web.WebSession` and 5 real HTTP clients
reading ``/events``, each its own process (as browsers are): 4 read as fast as they can, 1 is
deliberately slow (a 4 KiB receive buffer, one 1 KiB read per second), so its queue fills and
it is resynced. Reported: the pipeline's per-stage latency histograms (p50/p95/p99) of both
runs, their ratio, what each client received, and the server's counters. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaitedge.demo import DEMO_RECORDING
from gaitedge.recording import Recording, read_recording
from gaitedge.runner import calibrate_recording, open_pipeline, stream
from gaitedge.sources import ReplaySource
from gaitedge.web import WebSession

CLIENTS = 5


def client(url: str, slow: bool, seconds: float) -> None:
    """One SSE reader (run in its own process): prints its counts as JSON at the end."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.socket()
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: {parts.hostname}\r\n\r\n".encode())
    sock.settimeout(1.0)
    received = messages = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1024 if slow else 65536)
        except TimeoutError:
            continue
        if not data:
            break
        received += len(data)
        messages += data.count(b"\n\n")
        if slow:
            time.sleep(1.0)
    print(json.dumps({"slow": slow, "bytes": received, "messages": messages}))


def run_session(rec: Recording, speed: float, web: bool) -> dict:
    """One paced replay through the pipeline; with ``web``, 5 client processes reading."""
    pipe = open_pipeline(None, None)
    source = ReplaySource(recording=rec, speed=speed, tick_s=0.02, device="bench")
    calibrate_recording(pipe, source.device, rec.timestamp_s, rec.imu)
    wall_s = rec.duration_s / speed
    procs, view = [], None
    if web:
        view = WebSession("127.0.0.1:0", pipe, [source], command="bench")
        view.__enter__()
        for i in range(CLIENTS):
            args = [sys.executable, __file__, "--client", view.url, "--seconds", str(wall_s + 3)]
            procs.append(
                subprocess.Popen([*args, *(["--slow"] if i == 0 else [])], stdout=subprocess.PIPE)
            )
        deadline = time.monotonic() + 30
        while view.server.stats.clients < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)  # every client connected before the stream starts
    with pipe:
        asyncio.run(stream(pipe, source))
        if view is not None:
            view.__exit__(None, None, None)
        out = {"latency": pipe.stats.latency_summary(), "windows": pipe.stats.windows}
    if web:
        out["clients"] = [json.loads(p.communicate()[0].decode().strip()) for p in procs]
        s = view.server.stats
        out["server"] = {
            "served": s.served,
            "messages": s.messages,
            "dropped": s.dropped,
            "resyncs": s.resyncs,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Only the JSON line.")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=120.0, help="Recording seconds played.")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.slow, args.seconds)
        return
    full = read_recording(DEMO_RECORDING)
    n = int(args.seconds * full.median_rate_hz)
    rec = Recording(full.timestamp_s[:n], full.imu[:n])
    with open_pipeline(None, None) as warm_up:  # imports, ONNX Runtime's first runs
        asyncio.run(stream(warm_up, ReplaySource(recording=rec, fast=True)))
    none = run_session(rec, args.speed, web=False)
    clients = run_session(rec, args.speed, web=True)
    ratio = {
        stage: {
            q: round(clients["latency"][stage][q] / none["latency"][stage][q], 3)
            for q in ("p50_ms", "p95_ms", "p99_ms")
        }
        for stage in ("chain", "engine", "end_to_end")
    }
    result = {
        "recording_s": round(rec.duration_s, 1),
        "speed": args.speed,
        "no_clients": none,
        "five_clients": clients,
        "ratio_five_to_none": ratio,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if not args.json:
        for name in ("no_clients", "five_clients"):
            e2e = result[name]["latency"]["end_to_end"]
            print(f"{name:<13} end_to_end p50 {e2e['p50_ms']} ms, p95 {e2e['p95_ms']} ms, "
                  f"p99 {e2e['p99_ms']} ms")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
