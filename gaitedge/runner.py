"""Sessions the CLI starts: open the model, sinks and recorder, run sources, report.

Kept out of ``cli.py`` so the command line stays parsing and printing only, and so tests and
other programs can run the same sessions in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gaitedge.engine import load_engine
from gaitedge.pipeline import Pipeline
from gaitedge.recording import RecordingWriter
from gaitedge.sinks import FanOut, build_sinks
from gaitedge.sources.base import Source
from gaitedge.sources.device import DeviceSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkOptions:
    alerts_jsonl: Path | None = None
    webhook: str | None = None
    mqtt: str | None = None
    mqtt_topic: str = "gaitedge/alerts"
    lsl: bool = False


def open_pipeline(
    model: str | os.PathLike | None,
    sinks: SinkOptions,
    *,
    echo: Callable[[str], None] | None = None,
    record: Path | None = None,
    intra_op_threads: int = 1,
    mount: str | None = None,
    mount_file: Path | None = None,
    strict: bool = False,
    provider: str = "cpu",
) -> Pipeline:
    """A ready pipeline (a context manager: leaving it closes the sinks and the recording).

    ``mount``: ``none``, ``auto`` or an axis map (default: the contract's); ``mount_file``: the
    JSON file automatic estimates are restored from and saved to, per device id.
    ``provider``: see ``gaitedge.engine.Provider``.

    Raises ContractError, EngineUnavailableError (GPU stack missing), ValueError (a malformed
    sink option, axis map or mount file) or OSError before anything runs.
    """
    from gaitedge.mounting import MountStore

    engine = load_engine(model, intra_op_threads=intra_op_threads, provider=provider)
    store = MountStore(mount_file) if mount_file is not None else None
    fan_out: FanOut = build_sinks(
        alerts_jsonl=sinks.alerts_jsonl,
        webhook=sinks.webhook,
        mqtt=sinks.mqtt,
        mqtt_topic=sinks.mqtt_topic,
        lsl=sinks.lsl,
        echo=echo,
    )
    try:
        recorder = RecordingWriter(record, with_device_id=True) if record else None
    except Exception:
        fan_out.close()
        raise
    try:
        return Pipeline(
            engine, fan_out, recorder=recorder, mount=mount, mount_store=store, strict=strict
        )
    except Exception:
        fan_out.close()
        if recorder is not None:
            recorder.close()
        raise


async def _with_status(
    pipeline: Pipeline,
    sources: list[Source],
    duration_s: float | None,
    on_status: Callable[[list[dict]], None] | None,
    status_interval_s: float,
) -> None:
    run = asyncio.create_task(pipeline.run_many(sources, duration_s=duration_s))
    while not run.done():
        await asyncio.wait({run}, timeout=status_interval_s)
        if on_status is not None and not run.done():
            on_status(status_rows(pipeline, sources))
    run.result()


def status_rows(pipeline: Pipeline, sources: list[Source]) -> list[dict]:
    """The pipeline's per-device status joined with each source's link health."""
    links = {s.device: s.stats for s in sources}
    rows = pipeline.status()
    for row in rows:
        link = links.get(row["device"])
        if link is not None:
            row |= {
                "rate_hz": round(link.rate_hz, 2),
                "lost_frames": link.lost_frames,
                "reconnects": link.reconnects,
                "corrupt": sum(link.decoder_drops.values()),
            }
    for source in sources:
        if isinstance(source, DeviceSource):  # device clock vs host clock, fitted on demand
            for row in rows:
                if row["device"] == source.device:
                    row["clock_drift_ppm"] = round(source.assembler.drift_ppm(), 1)
    return rows


def run_sources(
    pipeline: Pipeline,
    sources: list[Source],
    *,
    duration_s: float | None = None,
    on_status: Callable[[list[dict]], None] | None = None,
    status_interval_s: float = 2.0,
) -> None:
    """Run sources to their end, for ``duration_s`` seconds, or until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_with_status(pipeline, sources, duration_s, on_status, status_interval_s))


def measure_live(
    pipeline: Pipeline, timestamp_s, imu, *, chunk_samples: int = 4, device: str = "bench"
) -> dict:
    """Feed a recording as a live device would (small chunks, windows one at a time).

    Returns the per-stage latency histograms and the CPU cost per second of sensor data, from
    which the number of 50 Hz sensors one core can serve follows.
    """
    import time

    from gaitedge.sources.base import SampleChunk

    start = time.process_time()
    for i in range(0, len(timestamp_s), chunk_samples):
        chunk = SampleChunk(
            device,
            timestamp_s[i : i + chunk_samples],
            imu[i : i + chunk_samples],
            host_rx_s=time.monotonic(),
        )
        pipeline.process(chunk)
    cpu_s = time.process_time() - start
    duration_s = float(timestamp_s[-1] - timestamp_s[0])
    per_sensor = cpu_s / duration_s
    return {
        "latency": pipeline.stats.latency_summary(),
        "cpu_ms_per_sensor_second": round(per_sensor * 1e3, 3),
        "sensors_per_core": int(1.0 / per_sensor) if per_sensor > 0 else None,
        "windows": pipeline.stats.windows,
    }
