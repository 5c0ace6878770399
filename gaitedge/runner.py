"""The session layer: open the model, sinks and recorder, drive a Pipeline from sources, and
report typed status (:class:`~gaitedge.status.DeviceStatus`) and live cost.

The one place a session runs, for ``listen``, ``replay``, ``demo`` and ``bench`` alike; kept out
of ``cli.py`` so the command line stays parsing and printing only, and so tests and other
programs run the same sessions in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from gaitedge.bundle import ContractError
from gaitedge.cores import usable_cores
from gaitedge.engine import accelerometer_only_model, cold_start_model, load_engine
from gaitedge.mqtt import mqtt_settings
from gaitedge.pipeline import DevicesRefusedError, Pipeline
from gaitedge.recording import RecordingWriter
from gaitedge.sinks import FanOut, build_sinks
from gaitedge.sources.base import DeviceResult, Source
from gaitedge.sources.device import DeviceSource, SourceError
from gaitedge.status import DeviceStatus, LinkStatus
from gaitedge.webhook import webhook_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkOptions:
    """Where alerts go. Secrets are files or come from the environment (``gaitedge.private``):
    never a value here, so never a command-line argument."""

    alerts_jsonl: Path | None = None
    webhook: str | None = None
    mqtt: str | None = None
    mqtt_topic: str | None = None  # default: the --mqtt URL's path, else gaitedge/alerts
    lsl: bool = False
    mqtt_user: str | None = None
    mqtt_password_file: Path | None = None
    mqtt_ca: Path | None = None
    mqtt_cert: Path | None = None
    mqtt_key: Path | None = None
    webhook_ca: Path | None = None
    webhook_secret_file: Path | None = None
    webhook_token_file: Path | None = None


def open_pipeline(
    model: str | os.PathLike | None,
    sinks: SinkOptions | None,
    *,
    echo: Callable[[str], None] | None = None,
    record: Path | None = None,
    intra_op_threads: int = 1,
    mount: str | None = None,
    mount_file: Path | None = None,
    warn_unwritable_mount_file: bool = False,
    strict: bool = False,
    provider: str = "cpu",
    acc_range_g: float | None = None,
    shadow: bool = False,
    batch_threads: int = 1,
) -> Pipeline:
    """A ready pipeline (a context manager: leaving it closes the sinks and the recording).

    ``mount``: ``none``, ``auto`` or an axis map (default: the contract's); ``mount_file``: the
    JSON file automatic estimates are restored from and saved to, per device id. A mount file
    that cannot be written is a MountingError (``listen``: refused before anything streams),
    or with ``warn_unwritable_mount_file`` one logged warning and a store that is only read
    (``replay`` goes on). ``provider``: see ``gaitedge.engine.Provider``. ``sinks=None``: no
    sinks at all, not even stdout (``bench`` times the pipeline alone). ``shadow``: run the host
    model beside devices that decide on their own (``Pipeline``). ``batch_threads``: a large
    engine call's batches that many at once (``replay --fast``: :func:`fast_batch_threads`).

    Raises ContractError, EngineUnavailableError (GPU stack missing), ValueError (a malformed
    sink option, axis map or mount file) or OSError (``MqttRefusedError``: a broker that
    refused the login or the certificate) before anything runs.
    """
    store = _mount_store(mount_file, mount, warn_unwritable_mount_file)
    opening = {
        "intra_op_threads": intra_op_threads, "provider": provider, "batch_threads": batch_threads
    }  # fmt: skip
    engine = load_engine(model, **opening)
    options = {"mount": mount, "mount_store": store, "strict": strict, "acc_range_g": acc_range_g}
    options |= model_options(model, mount, opening)
    options["shadow"] = shadow
    if sinks is None:
        return Pipeline(engine, FanOut([]), **options)
    webhook = mqtt = None
    if sinks.webhook is not None:
        webhook = webhook_settings(
            sinks.webhook, ca_file=sinks.webhook_ca, secret_file=sinks.webhook_secret_file,
            token_file=sinks.webhook_token_file,
        )  # fmt: skip
    if sinks.mqtt is not None:
        mqtt = mqtt_settings(
            sinks.mqtt, username=sinks.mqtt_user, password_file=sinks.mqtt_password_file,
            ca_file=sinks.mqtt_ca, cert_file=sinks.mqtt_cert, key_file=sinks.mqtt_key,
        )  # fmt: skip
    fan_out: FanOut = build_sinks(
        alerts_jsonl=sinks.alerts_jsonl,
        webhook=webhook,
        mqtt=mqtt,
        mqtt_topic=sinks.mqtt_topic,
        lsl=sinks.lsl,
        echo=echo,
    )
    try:
        recorder = RecordingWriter(record, with_device_id=True, wall_clock=True) if record else None
    except Exception:
        fan_out.close()
        raise
    try:
        return Pipeline(engine, fan_out, recorder=recorder, **options)
    except Exception:
        fan_out.close()
        if recorder is not None:
            recorder.close()
        raise


# Cores a fast replay's engine calls use at most.
FAST_BATCH_THREADS = 4


def fast_batch_threads() -> int:
    """Threads for a fast replay's large engine calls: the cores this process may run on, at
    most :data:`FAST_BATCH_THREADS` (a live tick's call is one batch and runs alone)."""
    return max(1, min(FAST_BATCH_THREADS, usable_cores()))


def reads_acc_only(model) -> bool:
    """Whether an export without a gyroscope is read (its acceleration alone) to run ``model``:
    with no model given, the shipped accelerometer-only bundle runs it (picked by its
    contract); else the reader refuses it, saying what to export."""
    return model is None and accelerometer_only_model() is not None


def model_options(model, mount: str | None, opening: dict) -> dict:
    """The pipeline's models beside ``model`` as ``replay`` and ``listen`` run them: the
    accelerometer-only bundle for a device without a gyroscope and the cold-start bundle while
    a device's mounting calibrates (each shipped one only when no model was given)."""
    return _acc_only_options(model, opening) | cold_start_options(model, mount, opening)


def _acc_only_options(model, opening: dict) -> dict:
    """Devices without a gyroscope run the shipped accelerometer-only bundle when no model was
    given (opened on the first such device); else the pipeline refuses them, saying why."""
    if model is not None:
        return {"no_gyroscope_hint": "--model was given, so no other model is picked"}
    acc = accelerometer_only_model()
    if acc is None:
        return {"no_gyroscope_hint": "no accelerometer-only model is installed"}
    return {"acc_only_engine": functools.partial(load_engine, acc, **opening)}


def no_window_why(chain) -> str:
    """Why a stream that had samples made no window, from what its chain counted: too short,
    or broken by gaps into pieces shorter than a window (most samples a gap apart: a time
    column in ms read as seconds; clock resets: rows out of order)."""
    cfg, st = chain.cfg, chain.stats
    window_s = cfg.window_samples / cfg.sample_rate_hz
    kept = st.samples_in - st.dropped_nonfinite - st.dropped_out_of_order
    if st.segments <= 1:
        return (
            f"its {kept} usable samples span less than one window ({window_s:g} s at "
            f"{cfg.sample_rate_hz:g} Hz)"
        )
    why = (
        f"gaps over {cfg.max_gap_s:g} s break its {kept} samples into {st.segments} pieces, none "
        f"as long as a window ({window_s:g} s)"
    )
    if st.segments > kept / 2:
        why += (
            f"; most samples come over {cfg.max_gap_s:g} s after the one before (a time column "
            "in ms read as seconds? its header or --layout names the unit)"
        )
    if st.repair.clock_resets:
        why += f"; {st.repair.clock_resets} clock resets (stamps going back: rows out of order?)"
    return why


def cold_start_options(model, mount: str | None, opening: dict) -> dict:
    """While a device's automatic mounting calibrates, the shipped cold-start bundle reports
    its activity (opened on the first such device) when no model and no mounting were given."""
    if model is not None or mount not in (None, "auto"):
        return {}
    cold = cold_start_model()
    if cold is None:
        return {}
    return {"cold_start_engine": functools.partial(load_engine, cold, **opening)}


def _mount_store(path: Path | None, mount: str | None, warn_only: bool):
    """The store at ``path``, checked writable unless ``mount`` estimates nothing (``none``,
    an axis map)."""
    from gaitedge.mounting import MOUNTING_MODES, MountingError, MountStore

    if path is None:
        return None
    store = MountStore(path)
    if mount is not None and (mount not in MOUNTING_MODES or mount == "none"):
        return store
    try:
        store.check_writable()
    except MountingError as exc:
        if not warn_only:
            raise
        log.warning("%s; going on without saving", exc)
        store.read_only = True
    return store


def calibrate_recording(pipeline: Pipeline, device: str, timestamp_s, imu) -> str:
    """A recording replays as a device whose mounting was stored: with an automatic mounting
    and no estimate stored for ``device``, the whole recording is calibrated first, so every
    window is aligned (and activity reported) from the first sample.

    Returns what happened: ``calibrated``; ``stored`` (an estimate was there already);
    ``not_auto`` (the mounting is none or an axis map); ``too_little_walking`` (under 20 s of
    walking in the recording: the device calibrates while it streams, if at all).
    """
    return calibrate_chunks(pipeline, device, [(timestamp_s, imu)])


def calibrate_chunks(
    pipeline: Pipeline, device: str, chunks: Iterable[tuple[np.ndarray, np.ndarray]]
) -> str:
    """:func:`calibrate_recording` on a recording's chunks ``(timestamps [n], imu [n, 6])``
    (a long file streamed: a first pass, memory bounded by a chunk). ``chunks`` is only
    iterated when a calibration is needed."""
    from gaitedge.mounting import MountStore
    from gaitedge.preprocess import calibrate_stream

    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return "too_little_walking"
    # The chain of the model this device runs (without a gyroscope: the accelerometer-only
    # model's, or the refusal that device would get).
    cfg = pipeline.engine_for(device, first[1]).contract.chain
    if (pipeline.mount or cfg.mounting) != "auto":
        return "not_auto"
    if pipeline.mount_store is not None and device in pipeline.mount_store.entries:
        return "stored"
    chunks = itertools.chain([first], chunks)
    est = calibrate_stream(cfg, _units_checked(pipeline, device, chunks))
    if not est.calibrated:
        return "too_little_walking"
    if pipeline.mount_store is None:
        pipeline.mount_store = MountStore(None)
    pipeline.mount_store.put(device, est)
    return "calibrated"


def _units_checked(
    pipeline: Pipeline, device: str, chunks: Iterable[tuple[np.ndarray, np.ndarray]]
):
    """``chunks``, their first samples checked for m/s² as :meth:`Pipeline.process` checks them:
    data in the wrong unit are refused with that one error, before a calibration on them (which
    finds no walking in them) has anything to say."""
    pending: list[np.ndarray] | None = []
    first: float | None = None
    for t, imu in chunks:
        if pending is not None:
            pending.append(imu[:, :3])
            first = float(t[0]) if first is None and len(t) else first
            span = float(t[-1]) - first if len(t) else 0.0
            if pipeline.units_due(sum(map(len, pending)), span):
                pipeline.check_units(np.concatenate(pending), device)
                pending = None
        yield t, imu


class Tick:
    """Several devices' chunks that arrive in one pass of the event loop go through the
    pipeline together (:meth:`Pipeline.process_many`): one engine call for every window they
    complete, the same alerts as one device at a time. Nothing waits for a tick to fill: the
    pass takes what has arrived, so a device alone is scored as soon as its chunk arrives,
    and the more devices (or the busier the core), the more chunks share a pass. Each source
    awaits its chunk's pass before it reads on, so a device has one chunk in a tick."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._chunks: list = []
        self._waiting: list[asyncio.Future] = []
        self.passes = 0  # batches run, for bench/ and tests

    async def process(self, chunk) -> None:
        """Queue ``chunk`` (a SampleChunk or DeviceResult) for this pass and wait for it; a
        pipeline error in the pass is raised here."""
        loop = asyncio.get_running_loop()
        if not self._chunks:
            loop.call_soon(self._run)
        done = loop.create_future()
        self._chunks.append(chunk)
        self._waiting.append(done)
        await done

    def _run(self) -> None:
        chunks, waiting = self._chunks, self._waiting
        self._chunks, self._waiting = [], []
        self.passes += 1
        try:
            self.pipeline.process_many(chunks)
        except DevicesRefusedError as exc:  # those devices' sources get their refusal, no other
            for chunk, done in zip(chunks, waiting, strict=True):
                if not done.done():
                    refusal = exc.refused.get(getattr(chunk, "device", None))
                    if refusal is None:
                        done.set_result(None)
                    else:
                        done.set_exception(refusal)
            return
        except Exception as exc:  # every source of the pass stops with it (as one did before)
            for done in waiting:
                if not done.done():
                    done.set_exception(exc)
            return
        for done in waiting:
            if not done.done():  # a cancelled source's chunk is still processed
                done.set_result(None)


async def stream(
    pipeline: Pipeline,
    source: Source,
    *,
    duration_s: float | None = None,
    tick: Tick | None = None,
    refused: dict[str, Exception] | None = None,
) -> None:
    """Drive ``pipeline`` from ``source`` until it ends, ``duration_s`` passes, or cancel;
    with ``tick``, its chunks share the engine calls of the other sources on that tick.

    ``refused``: the session's refused devices, when it has others to go on with (several
    sources, or a source that serves several phones): a device whose data the model refuses
    (a wrong unit, no gyroscope), or whose link fails for good (``SourceError``), is logged and
    added there instead of ending the session; its source stops (a hub's other phones go on;
    a hub's own link failing is raised when it is the only source). Without it, the error is
    raised."""
    hub = _serves_many(source)

    async def consume() -> None:
        try:
            await read()
        except SourceError as exc:  # this link failed for good (a port gone, no gyroscope...)
            if refused is None or tick is None:  # no other source to go on with
                raise
            log.error("%s (this device stops; the others go on)", exc)
            refused[source.device] = exc

    async def read() -> None:
        async with source:
            async for chunk in source.chunks():
                device = getattr(chunk, "device", source.device)
                if refused is not None and device in refused:
                    continue  # a hub's refused phone: its later pushes are not read
                try:
                    if tick is not None:
                        await tick.process(chunk)
                    elif isinstance(chunk, DeviceResult):  # a device's own decision (1.2)
                        pipeline.process_result(chunk)
                    else:
                        pipeline.process(chunk)
                except ContractError as exc:
                    if refused is None:
                        raise
                    log.error("%s (this device is refused; the others go on)", exc)
                    refused[device] = exc
                    if not hub:
                        return

    task = asyncio.ensure_future(consume())
    try:
        done, _ = await asyncio.wait({task}, timeout=duration_s)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # the source is closed before this returns, on a stop too
    if done:
        task.result()  # the source's own end, or its error
        if refused is None or source.device not in refused:
            pipeline.finish(source.device)  # what the chain held back at the stream's end
        return
    log.info("stopping after %.1f s", duration_s)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _serves_many(source: Source) -> bool:
    """One source, many devices: a listener phones push to (``gaitedge.sources.phone``)."""
    return hasattr(source, "phones")


async def stream_many(
    pipeline: Pipeline, sources: list[Source], *, duration_s: float | None = None
) -> None:
    """Several devices at once: each source in its own task, one pipeline state each, and
    the chunks that arrive together scored together (:class:`Tick`). A device whose data the
    model refuses, or whose link fails for good, stops alone while others go on
    (:func:`stream`'s ``refused``); the first such error is raised when every source has ended."""
    tick = Tick(pipeline) if len(sources) > 1 else None
    many = len(sources) > 1 or any(_serves_many(s) for s in sources)
    refused: dict[str, Exception] | None = {} if many else None
    await asyncio.gather(
        *(stream(pipeline, s, duration_s=duration_s, tick=tick, refused=refused) for s in sources)
    )
    if refused:
        raise next(iter(refused.values()))


def status(pipeline: Pipeline, sources: list[Source]) -> list[DeviceStatus]:
    """The pipeline's per-device status joined with each source's link health."""
    by_device = {s.device: s for s in sources}
    for s in sources:  # a network source serves several phones, each its own device
        by_device.update(getattr(s, "devices", {}))
    rows = pipeline.device_status()
    # A device the pipeline has no sample of yet (connecting, or sending only what is not a
    # frame): its row still shows its link (corrupt bytes counted), not nothing.
    seen = {row.device for row in rows}
    rows += [
        DeviceStatus(s.device, 0.0, None, 0.0, 0, 0, 0, 0.0)
        for s in sources
        if not _serves_many(s) and s.device not in seen
    ]
    out = []
    for row in rows:
        source = by_device.get(row.device)
        if source is not None:
            k = source.stats
            drift = None
            if isinstance(source, DeviceSource):  # device vs host clock, fitted on demand
                drift = round(source.assembler.drift_ppm(), 1)
            link = LinkStatus(
                rate_hz=round(k.rate_hz, 2),
                lost_frames=k.lost_frames,
                corrupt=sum(k.decoder_drops.values()),
                reconnects=k.reconnects,
                clock_drift_ppm=drift,
                lost_samples=k.lost_samples,
                device_restarts=k.device_restarts,
                # a vendor profile's name, else gaitedge's own protocol (serial, BLE)
                device_type=getattr(source, "device_type", None)
                or ("gaitedge" if isinstance(source, DeviceSource) else None),
            )
            row = replace(row, link=link)
            # A phone's stamps are repaired per sensor before its sensors' join (the chain
            # then sees them increasing): those repairs counted beside the chain's.
            r = getattr(source, "repaired", None)
            if r is not None:
                row = replace(
                    row, tied=row.tied + r["tied"], clock_resets=row.clock_resets +
                    r["clock_resets"], outliers=row.outliers + r["outliers"],
                )  # fmt: skip
        out.append(row)
    return out


async def _with_status(
    pipeline: Pipeline,
    sources: list[Source],
    duration_s: float | None,
    on_status: Callable[[list[DeviceStatus]], None] | None,
    status_interval_s: float,
    save_interval_s: float,
) -> None:
    run = asyncio.create_task(stream_many(pipeline, sources, duration_s=duration_s))
    saver = asyncio.create_task(_save_periodically(pipeline, save_interval_s))
    with _stop_on_signals(run):
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=status_interval_s)
                if on_status is not None and not run.done():
                    on_status(status(pipeline, sources))
        finally:
            saver.cancel()
    if not run.cancelled():  # cancelled: a stop signal, a clean end
        run.result()


# Stops as a clean end of the stream: SIGTERM is how systemd stops a unit (``systemctl stop``,
# ``restart``, an unplugged device's BindsTo=), SIGINT is Ctrl-C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# While streaming, a mounting estimate that moved is written at most this often, so a kill
# that cannot be caught (SIGKILL, power cut) loses at most this much of what was learned.
SAVE_INTERVAL_S = 30.0


@contextlib.contextmanager
def _stop_on_signals(run: asyncio.Task):
    """A stop signal cancels ``run``: the sources close, and the caller goes on as after the
    end of the stream (sinks flushed, mounting estimates saved). A second signal acts as it
    would have (a stop that hangs can still be forced). Main thread only, where Python
    receives signals; elsewhere a no-op."""
    loop = asyncio.get_running_loop()
    previous = {}

    def restore() -> None:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
        previous.clear()

    def stop(sig: signal.Signals) -> None:
        log.info("%s: stopping", sig.name)
        restore()
        run.cancel()

    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, stop, sig)
            except NotImplementedError:  # Windows: Ctrl-C stays KeyboardInterrupt
                break
            previous[sig] = handler
    try:
        yield
    finally:
        restore()


async def _save_periodically(pipeline: Pipeline, interval_s: float) -> None:
    """Every ``interval_s``, write the mount store if an estimate moved (never on every
    block); a store that cannot be written is warned about once per reason."""
    from gaitedge.mounting import MountingError

    said = None
    while True:
        await asyncio.sleep(interval_s)
        try:
            if pipeline.save_mountings(if_changed=True):
                log.debug("mounting estimates saved")
        except MountingError as exc:
            if str(exc) != said:
                log.warning("%s", exc)
                said = str(exc)


def run_sources(
    pipeline: Pipeline,
    sources: list[Source],
    *,
    duration_s: float | None = None,
    on_status: Callable[[list[DeviceStatus]], None] | None = None,
    status_interval_s: float = 2.0,
    save_interval_s: float = SAVE_INTERVAL_S,
) -> None:
    """Run sources to their end, for ``duration_s`` seconds, or until SIGTERM or SIGINT
    (Ctrl-C), each a clean stop: the sources are closed when this returns, and the caller's
    pipeline close flushes the sinks and saves the mounting estimates. Meanwhile estimates
    that moved are saved every ``save_interval_s``."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _with_status(
                pipeline, sources, duration_s, on_status, status_interval_s, save_interval_s
            )
        )


@dataclass(frozen=True)
class LiveCost:
    """What ``gaitedge bench`` reports: per-stage latency and CPU per second of sensor data."""

    latency: dict[str, dict[str, float]]
    cpu_ms_per_sensor_second: float
    sensors_per_core: int | None
    windows: int

    def to_dict(self) -> dict:
        return asdict(self)


def measure_live(
    pipeline: Pipeline,
    timestamp_s,
    imu,
    *,
    chunk_samples: int = 4,
    device: str = "bench",
    devices: int = 1,
    batched: bool = True,
) -> LiveCost:
    """Feed a recording as live devices would: in ``chunk_samples`` frames, one tick per frame.

    With ``devices`` > 1, that many devices stream the recording side by side, each starting
    at its own place in it (device ``d`` at ``d / devices`` of it, wrapping round) and its own
    sample of the frame (so their windows fall due in different ticks); ``batched``: each
    tick's frames go through :meth:`Pipeline.process_many` together (what :class:`Tick` does
    in ``listen``), else one :meth:`Pipeline.process` per frame (the per-device baseline).
    Returns the per-stage latency histograms and the CPU cost per second of sensor data (per
    device), from which the number of 50 Hz sensors one core can serve follows.
    """
    import time

    from gaitedge.sources.base import SampleChunk

    if chunk_samples < 1 or devices < 1:
        raise ValueError(f"chunk_samples and devices must be >= 1, not {chunk_samples}, {devices}")
    n = len(timestamp_s)
    names = [device] if devices == 1 else [f"{device}{d}" for d in range(devices)]
    starts = [d * n // devices for d in range(devices)]
    signals = [np.roll(imu, -s, axis=0) for s in starts]  # each device's samples, in order
    start = time.process_time()
    for k in range(-(-n // chunk_samples) + 1):
        tick = []
        for d, name in enumerate(names):
            lag = d % chunk_samples
            a, b = max(0, k * chunk_samples - lag), min(n, (k + 1) * chunk_samples - lag)
            if a < b:
                t, x = timestamp_s[a:b], signals[d][a:b]
                tick.append(SampleChunk(name, t, x, host_rx_s=time.monotonic()))
        if batched:
            pipeline.process_many(tick)
        else:
            for chunk in tick:
                pipeline.process(chunk)
    cpu_s = time.process_time() - start
    duration_s = float(timestamp_s[-1] - timestamp_s[0]) * devices
    per_sensor = cpu_s / duration_s
    return LiveCost(
        latency=pipeline.stats.latency_summary(),
        cpu_ms_per_sensor_second=round(per_sensor * 1e3, 3),
        sensors_per_core=int(1.0 / per_sensor) if per_sensor > 0 else None,
        windows=pipeline.stats.windows,
    )
