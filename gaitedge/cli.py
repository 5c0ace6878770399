"""The ``gaitedge`` command line: parsing and printing only; the work is in the library.

Heavy or optional imports (onnxruntime, bleak, pyserial, torch, tensorrt) stay inside the
commands that need them, so ``gaitedge --help`` starts fast and never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gaitedge import __version__

app = typer.Typer(
    name="gaitedge",
    help="Gait and activity recognition from wearable IMUs, from recordings or live sensors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich's renderer costs ~0.15 s of imports on every --help, and it printed
    # boolean flags as taking a value (`--fast <bool>`).
    rich_markup_mode=None,
)

RecordingArg = Annotated[
    Path,
    typer.Argument(
        help="A recording: gaitedge's CSV or an app's export (the file, the zip as the app "
        "shares it, or the unzipped folder; see `gaitedge formats`).",
        exists=True,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="Read the recording as this format (default: detected; gaitedge formats)."
    ),
]
LayoutOption = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="With --format csv: the columns of any other CSV, as a layout string, a layout "
        "JSON file or the name of a saved layout (gaitedge formats --help).",
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(
        "--rate-hz", help="Sample rate for CSV files without a timestamp_s column (seed format)."
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user error as one plain line (no box that wraps file paths) and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load(
    path: Path,
    rate_hz: float | None,
    strict: bool = False,
    device: str | None = None,
    fmt: str | None = None,
    layout: str | None = None,
):
    from gaitedge.formats import ReadOptions, read
    from gaitedge.recording import RecordingError

    try:
        return read(path, format=fmt, options=ReadOptions(rate_hz, strict, device, layout))
    except RecordingError as exc:  # FormatError included
        raise fail(str(exc)) from exc


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Gait and activity recognition from wearable IMUs, from recordings or live sensors."""


@app.command()
def version() -> None:
    """Print the gaitedge version."""
    typer.echo(__version__)


@app.command()
def inspect(
    recording: RecordingArg,
    rate_hz: RateOption = None,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
    device: DeviceOption = None,
) -> None:
    """Summarise a recording: its format, each sensor's rate and unit, the sign and gravity
    rules applied, samples, duration, gaps, labels."""
    from gaitedge.recording import describe_recording

    rec = _load(recording, rate_hz, device=device, fmt=fmt, layout=layout)
    typer.echo(json.dumps(describe_recording(rec), indent=2))


@app.command()
def convert(
    recording: RecordingArg,
    out: Annotated[Path, typer.Argument(help="The canonical CSV to write.", dir_okay=False)],
    rate_hz: RateOption = None,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
    device: DeviceOption = None,
    strict: StrictOption = False,
) -> None:
    """Write a recording (any format gaitedge reads) as gaitedge's canonical CSV."""
    from gaitedge.recording import write_recording

    rec = _load(recording, rate_hz, strict=strict, device=device, fmt=fmt, layout=layout)
    if out.resolve() == recording.resolve():
        raise fail(f"{out}: would overwrite the recording it converts")
    try:
        write_recording(out, rec)
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from exc
    typer.echo(f"{len(rec)} samples, {rec.duration_s:.1f} s -> {out}")


@app.command()
def formats(
    save_layout: Annotated[
        str | None,
        typer.Option("--save-layout", help="Remember the --layout given under this name."),
    ] = None,
    layout: LayoutOption = None,
) -> None:
    """List the formats gaitedge reads (and what each needs) and the saved CSV layouts.

    Any other CSV reads with --format csv --layout LAYOUT; save a layout once with
    `gaitedge formats --save-layout NAME --layout LAYOUT`, then give --layout NAME.
    """
    from gaitedge.formats import FormatError, generic, list_formats

    if save_layout is not None:
        if layout is None:
            raise fail("--save-layout needs the --layout to remember")
        try:
            path = generic.save_layout(save_layout, generic.load_layout(layout))
        except (FormatError, OSError) as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"saved layout {save_layout!r} to {path}")
        return
    for info in list_formats():
        typer.echo(f"{info.name:<13} {info.title}")
        typer.echo(f"{'':<13} needs: {info.needs}")
    for name, spec in generic.list_layouts().items():
        typer.echo(f"layout {name:<6} {spec}")


@app.command()
def windows(
    recording: RecordingArg,
    out: Annotated[Path, typer.Option("--out", help="Output .npz with the windows.")],
    chain_json: Annotated[
        Path | None, typer.Option("--chain", help="Chain config JSON (default: built-in).")
    ] = None,
    rate_hz: RateOption = None,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
) -> None:
    """Save a recording's windows (npz) from the offline signal chain."""
    import numpy as np

    from gaitedge.preprocess import ChainConfig, ChainInputError, run_offline

    cfg = ChainConfig.from_json(chain_json.read_text()) if chain_json else ChainConfig()
    rec = _load(recording, rate_hz, fmt=fmt, layout=layout)
    try:
        result = run_offline(cfg, rec.timestamp_s, rec.imu)
    except ChainInputError as exc:
        raise fail(str(exc)) from exc
    np.savez_compressed(
        out,
        data=result.data,
        t_start_s=result.t_start_s,
        t_end_s=result.t_end_s,
        segment=result.segment,
        chain=cfg.to_json(),
    )
    typer.echo(f"{len(result)} windows of {cfg.window_samples} x {cfg.n_channels} -> {out}")


ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Model bundle (.onnx, or .engine with TensorRT). Default: shipped."
    ),
]
ProviderOption = Annotated[
    str,
    typer.Option(
        "--provider",
        help="Where ONNX Runtime runs a .onnx model: auto (CUDA if onnxruntime-gpu sees a GPU), "
        "cpu, cuda or tensorrt.",
    ),
]
JsonlOption = Annotated[
    Path | None, typer.Option("--alerts-jsonl", help="Append alerts to this JSONL file.")
]
WebhookOption = Annotated[
    str | None, typer.Option("--webhook", help="POST each alert as JSON to this URL.")
]
MqttOption = Annotated[
    str | None, typer.Option("--mqtt", help="Publish alerts to an MQTT broker HOST[:PORT].")
]
TopicOption = Annotated[str, typer.Option("--mqtt-topic", help="MQTT topic for alerts.")]
LslOption = Annotated[bool, typer.Option("--lsl", help="Also push alerts to an LSL outlet.")]
MountOption = Annotated[
    str | None,
    typer.Option(
        "--mount",
        help="How the sensor is worn: auto (estimate from walking), none (already in the "
        "model's body frame) or an axis map like -y,x,z (body x = -sensor y, ...). "
        "Default: the model's.",
    ),
]
MountFileOption = Annotated[
    Path | None,
    typer.Option(
        "--mount-file",
        help="JSON file of mounting estimates per device id (default for live devices: "
        "mounting.json in the user's cache directory; replay: none).",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device", help="A recording of several devices (listen --record): the device_id to use."
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Refuse tied or backward timestamps instead of repairing them."),
]
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only alerts and errors.")]


def _logging(verbose: int, quiet: bool) -> None:
    import logging

    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if not verbose and not quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _session(
    model, sinks, *, record=None, mount=None, mount_file=None, strict=False, provider="cpu",
    acc_range_g=None,
):  # fmt: skip
    """Open a pipeline, turning every user error into one clear line and a non-zero exit."""
    from gaitedge.bundle import ContractError
    from gaitedge.engine import EngineUnavailableError
    from gaitedge.runner import open_pipeline

    try:
        return open_pipeline(
            model, sinks, echo=typer.echo, record=record, mount=mount, mount_file=mount_file,
            strict=strict, provider=provider, acc_range_g=acc_range_g,
        )  # fmt: skip
    except (ContractError, EngineUnavailableError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc


def _sinks(jsonl, webhook=None, mqtt=None, topic="gaitedge/alerts", lsl=False):
    from gaitedge.runner import SinkOptions

    return SinkOptions(jsonl, webhook, mqtt, topic, lsl)


def _print_status(rows, playback_speed: float = 1.0) -> None:
    for row in rows:  # gaitedge.status.DeviceStatus
        typer.echo(row.line(playback_speed), err=True)


def _print_stats(pipeline) -> None:
    typer.echo(json.dumps({"latency": pipeline.stats.latency_summary()}), err=True)


@app.command()
def listen(
    serial: Annotated[
        list[str] | None, typer.Option("--serial", help="Serial port of a device (repeatable).")
    ] = None,
    ble: Annotated[
        list[str] | None, typer.Option("--ble", help="BLE address of a device (repeatable).")
    ] = None,
    model: ModelOption = None,
    provider: ProviderOption = "cpu",
    record: Annotated[
        Path | None, typer.Option("--record", help="Record the raw stream to this CSV.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
    mount: MountOption = None,
    mount_file: MountFileOption = None,
    strict: StrictOption = False,
    alerts_jsonl: JsonlOption = None,
    webhook: WebhookOption = None,
    mqtt: MqttOption = None,
    mqtt_topic: TopicOption = "gaitedge/alerts",
    lsl: LslOption = False,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Stream live sensors: status, activity and fall alerts."""
    from gaitedge.bundle import ContractError
    from gaitedge.mounting import default_mount_file
    from gaitedge.runner import run_sources
    from gaitedge.sources import BleSource, SerialSource, SourceError

    _logging(verbose, quiet)
    if not serial and not ble:
        raise fail("give at least one device: --serial PORT or --ble ADDRESS")
    sources = [SerialSource(p) for p in serial or []] + [BleSource(a) for a in ble or []]
    session = _session(
        model, _sinks(alerts_jsonl, webhook, mqtt, mqtt_topic, lsl), record=record, mount=mount,
        mount_file=mount_file or default_mount_file(), strict=strict, provider=provider,
    )  # fmt: skip
    with session as pipe:
        try:
            run_sources(
                pipe, sources, duration_s=duration, on_status=None if quiet else _print_status
            )
        except (SourceError, ContractError) as exc:  # device gone, or data the model refuses
            raise fail(str(exc), code=1) from exc
        if stats:
            _print_stats(pipe)


@app.command()
def replay(
    recording: RecordingArg,
    model: ModelOption = None,
    provider: ProviderOption = "cpu",
    speed: Annotated[float, typer.Option("--speed", help="Playback speed factor.")] = 1.0,
    fast: Annotated[
        bool, typer.Option("--fast", help="As fast as possible, windows batched.")
    ] = False,
    rate_hz: RateOption = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
    mount: MountOption = None,
    mount_file: MountFileOption = None,
    acc_range_g: Annotated[
        float | None,
        typer.Option(
            "--acc-range-g",
            help="The recording device's accelerometer full scale in g, when small (a ±2 g phone "
            "clips impacts; the fall threshold then stays below it). Live devices declare it.",
        ),
    ] = None,
    device: DeviceOption = None,
    strict: StrictOption = False,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
    alerts_jsonl: JsonlOption = None,
    webhook: WebhookOption = None,
    mqtt: MqttOption = None,
    mqtt_topic: TopicOption = "gaitedge/alerts",
    lsl: LslOption = False,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Replay a recording (gaitedge's CSV or an app's export): activity timeline and alerts."""
    from gaitedge.runner import calibrate_recording, run_sources
    from gaitedge.sources import ReplaySource

    _logging(verbose, quiet)
    rec = _load(recording, rate_hz, strict=strict, device=device, fmt=fmt, layout=layout)
    source = ReplaySource(recording=rec, speed=speed, fast=fast, device=device or recording.name)
    session = _session(
        model, _sinks(alerts_jsonl, webhook, mqtt, mqtt_topic, lsl), mount=mount,
        mount_file=mount_file, strict=strict, provider=provider, acc_range_g=acc_range_g,
    )  # fmt: skip
    with session as pipe:
        outcome = calibrate_recording(pipe, source.device, rec.timestamp_s, rec.imu)
        if outcome == "too_little_walking":
            typer.echo(
                f"warning: {recording.name} has less than 20 s of walking to calibrate the "
                "mounting from: activity is held back until it has (give --mount none if it is "
                "in the model's body frame, or --mount-file with a stored estimate)",
                err=True,
            )
        try:
            run_sources(pipe, [source])
        except (ValueError, OSError) as exc:  # RecordingError, ChainInputError, ContractError
            raise fail(str(exc)) from exc
        summary = {"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}
        typer.echo(json.dumps(summary))
        if stats:
            _print_stats(pipe)


@app.command()
def calibrate(
    recording: Annotated[
        Path | None,
        typer.Argument(
            help="A recording with walking in it (gaitedge's CSV or an app's export).",
            exists=True,
        ),
    ] = None,
    serial: Annotated[
        str | None, typer.Option("--serial", help="Calibrate a live device on this port.")
    ] = None,
    ble: Annotated[
        str | None, typer.Option("--ble", help="Calibrate a live BLE device at this address.")
    ] = None,
    duration: Annotated[
        float, typer.Option("--duration", help="Live: seconds to listen (walk meanwhile).")
    ] = 60.0,
    device_id: Annotated[
        str | None, typer.Option("--device-id", help="Store under this id (default: the file's).")
    ] = None,
    device: DeviceOption = None,
    model: ModelOption = None,
    rate_hz: RateOption = None,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
    mount_file: MountFileOption = None,
) -> None:
    """Estimate how a sensor is worn (20 s of walking) and store it."""
    from gaitedge.bundle import ContractError, read_contract
    from gaitedge.engine import default_model_path
    from gaitedge.mounting import MountingError, MountStore, default_mount_file
    from gaitedge.preprocess import calibrate as estimate

    if (recording is None) == (serial is None and ble is None) or (serial and ble):
        raise fail("give one recording CSV, or one live device (--serial PORT or --ble ADDRESS)")
    mount_file = mount_file or default_mount_file()
    try:
        cfg = read_contract(model or default_model_path()).chain
        store = MountStore(mount_file)
    except (ContractError, MountingError) as exc:
        raise fail(str(exc)) from exc
    if recording is None:
        _calibrate_live(serial, ble, duration, model, mount_file)
        return
    rec = _load(recording, rate_hz, device=device, fmt=fmt, layout=layout)
    est = estimate(cfg, [(rec.timestamp_s, rec.imu)])
    name = device_id or recording.name
    if device_id is None and rec.device_id is not None and len(rec.device_id):
        name = str(rec.device_id[0])
    result = {
        "device": name,
        "calibrated": est.calibrated,
        "walking_s": est.walking_s,
        "rotation": [[round(v, 4) for v in row] for row in est.rotation.tolist()],
    }
    typer.echo(json.dumps(result))
    if not est.calibrated:
        raise fail(
            f"{recording}: only {est.walking_s:.0f} s of walking found; 20 s are needed", code=1
        )
    store.put(name, est)
    store.save()
    typer.echo(f"saved the mounting of {name} to {mount_file}", err=True)


def _calibrate_live(serial, ble, duration, model, mount_file) -> None:
    from gaitedge.runner import run_sources
    from gaitedge.sources import BleSource, SerialSource, SourceError

    source = SerialSource(serial) if serial else BleSource(ble)
    with _session(model, _sinks(None), mount="auto", mount_file=mount_file) as pipe:
        try:
            run_sources(pipe, [source], duration_s=duration, on_status=_print_status)
        except SourceError as exc:
            raise fail(str(exc), code=1) from exc
        rows = pipe.status()
    for row in rows:
        typer.echo(json.dumps({"device": row["device"], "mounting": row["mounting"]}))
    if not rows or not all(r["mounting"].startswith("calibrated") for r in rows):
        raise fail("not calibrated: walk for at least 20 s while it listens", code=1)


@app.command()
def scan(
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to scan.")] = 5.0,
) -> None:
    """List nearby BLE devices that speak the gaitedge service."""
    import asyncio

    from gaitedge.sources import SourceError
    from gaitedge.sources import scan as ble_scan

    try:
        found = asyncio.run(ble_scan(timeout))
    except SourceError as exc:
        raise fail(str(exc), code=1) from exc
    if not found:
        typer.echo("no gaitedge devices found")
    for device in found:
        typer.echo(f"{device.address}  {device.name}  rssi={device.rssi}")


@app.command()
def demo(
    duration: Annotated[float, typer.Option("--duration", help="Seconds to run.")] = 20.0,
    speed: Annotated[
        float, typer.Option("--speed", help="Emulator playback speed (real time = 1).")
    ] = 4.0,
    ble: Annotated[
        bool,
        typer.Option("--ble", help="Over an emulated BLE link (bleak on a private D-Bus)."),
    ] = False,
    model: ModelOption = None,
    mount: MountOption = None,
    alerts_jsonl: JsonlOption = None,
    quiet: QuietOption = False,
) -> None:
    """Offline demo: `listen` on an emulated serial (or BLE) device.

    The device replays the shipped demo recording over a pseudo-terminal or an emulated BlueZ.
    """
    import functools
    import os

    from gaitedge.demo import DEMO_RECORDING, emulated_ble_device, emulated_device
    from gaitedge.recording import read_recording
    from gaitedge.runner import calibrate_recording, run_sources
    from gaitedge.sources import BleSource, SerialSource, SourceError

    _logging(0, quiet)
    typer.echo(f"demo: replaying {DEMO_RECORDING.name} from an emulated device at {speed}x")
    try:
        with (emulated_ble_device if ble else emulated_device)(speed=speed) as device:
            if ble:
                source = BleSource(device.address, watchdog_s=5.0)
                bus = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]  # the emulated BlueZ's private bus
                typer.echo(
                    f"demo: {device.name} on an emulated BlueZ; "
                    f"DBUS_SYSTEM_BUS_ADDRESS={bus} gaitedge listen --ble {device.address}"
                )
            else:
                source = SerialSource(device.path, watchdog_s=5.0)
                typer.echo(f"demo: device on {device.path}; gaitedge listen --serial {device.path}")
            with _session(model, _sinks(alerts_jsonl), mount=mount) as pipe:
                # As if `gaitedge calibrate` had run on this device before: its estimate comes
                # from the recording it plays, so activity shows from the first window.
                demo_rec = read_recording(DEMO_RECORDING)
                outcome = calibrate_recording(
                    pipe, source.device, demo_rec.timestamp_s, demo_rec.imu
                )
                if outcome == "calibrated":
                    typer.echo("demo: the emulated device's mounting is calibrated (stored)")
                status = functools.partial(_print_status, playback_speed=speed)
                run_sources(
                    pipe, [source], duration_s=duration, on_status=None if quiet else status
                )
                typer.echo(json.dumps({"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}))
    except (SourceError, RuntimeError) as exc:  # the link failed, or no dbus-daemon for --ble
        raise fail(str(exc), code=1) from exc


@app.command()
def info(
    model: Annotated[
        Path | None,
        typer.Argument(help="Model bundle (.onnx, or .engine with its .json). Default: shipped."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the contract as JSON.")] = False,
) -> None:
    """Describe a model: chain, windows, normalisation, heads."""
    from gaitedge.bundle import ContractError, read_contract
    from gaitedge.engine import default_model_path
    from gaitedge.info import describe_contract

    try:
        contract = read_contract(model if model is not None else default_model_path())
    except ContractError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(contract.to_json())
        return
    typer.echo("\n".join(describe_contract(contract)))


# The dataset choices are checked against gaitedge.datasets' enums when the command runs, not
# as typer Enum options: those would import numpy (through gaitedge.datasets) for every --help.
def _dataset_name(value: str) -> str:
    from gaitedge.datasets import DatasetName

    return _choice(DatasetName, value)


def _split_part(value: str) -> str:
    from gaitedge.datasets import SplitPart

    return _choice(SplitPart, value)


def _choice(kind, value: str) -> str:
    try:
        return kind(value).value
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise typer.BadParameter(f"{value!r} is not one of {choices}") from None


@app.command()
def evaluate(
    model: Annotated[
        Path | None, typer.Option("--model", help="ONNX bundle (default: the shipped model).")
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="Dataset to score: hapt or sisfall.", callback=_dataset_name)
    ] = "hapt",
    split: Annotated[
        str,
        typer.Option(
            help="Subjects: test (held out, as recorded in the bundle), val (validation: drawn "
            "from the training subjects, for choices), train (fitting) or all.",
            callback=_split_part,
        ),
    ] = "test",
    data_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder with hapt/ and sisfall/ (default: $GAITEDGE_DATA_ROOT or ../shared/data)."
        ),
    ] = None,
    labels: Annotated[
        int | None, typer.Option(help="HAPT labels scored: 6 or 12 (default: the model's).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="SisFall: fall probability that counts as a detection.")
    ] = 0.5,
    limit_subjects: Annotated[
        int | None, typer.Option(help="Score only the first N subjects (quick checks).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    mount: MountOption = None,
    provider: ProviderOption = "cpu",
) -> None:
    """Score a model on held-out subjects (chain + ONNX Runtime)."""
    from gaitedge.bundle import ContractError
    from gaitedge.datasets import DatasetError, default_data_root
    from gaitedge.engine import EngineUnavailableError, OnnxEngine, default_model_path
    from gaitedge.evaluate import EvalOptions, EvaluationError
    from gaitedge.evaluate import evaluate as score

    if labels not in (None, 6, 12):
        raise typer.BadParameter("--labels must be 6 or 12")
    options = EvalOptions(dataset, split, labels, threshold, limit_subjects, mount)
    try:
        engine = OnnxEngine(model or default_model_path(), provider=provider)
        result = score(engine, data_root or default_data_root(), options)
    except (
        ContractError,
        DatasetError,
        EvaluationError,
        EngineUnavailableError,
        ValueError,
    ) as exc:
        raise fail(str(exc)) from exc
    if not as_json:
        keys = ("macro_f1", "accuracy", "sensitivity", "specificity", "n_windows", "n_subjects")
        for key in ("dataset", "split", "model", *keys):
            if key in result:
                typer.echo(f"{key:<12} {result[key]}")
        for name, f1 in result["per_class_f1"].items():
            typer.echo(f"  F1 {name:<20} {f1}")
        return
    typer.echo(json.dumps(result))


@app.command()
def bench(
    recording: Annotated[
        Path | None,
        typer.Argument(help="A recording (default: the shipped demo recording)."),
    ] = None,
    model: ModelOption = None,
    chunk_samples: Annotated[
        int, typer.Option("--chunk-samples", help="Samples per chunk, as frames arrive.")
    ] = 4,
) -> None:
    """Per-stage latency and sensors per core, streamed as live."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.runner import measure_live

    rec = _load(recording or DEMO_RECORDING, None)
    with _session(model, None) as pipe:  # no sinks: time the pipeline only
        cost = measure_live(pipe, rec.timestamp_s, rec.imu, chunk_samples=chunk_samples)
    typer.echo(json.dumps(cost.to_dict()))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # python -m gaitedge.cli
    main()
