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


def _load(path: Path, rate_hz: float | None):
    from gaitedge.recording import RecordingError, read_recording

    try:
        return read_recording(path, rate_hz=rate_hz)
    except RecordingError as exc:
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
    recording: Annotated[Path, typer.Argument(help="Recording CSV.", exists=True, dir_okay=False)],
    rate_hz: RateOption = None,
) -> None:
    """Summarise a recording: samples, duration, rate, gaps, labels."""
    from gaitedge.recording import describe_recording

    typer.echo(json.dumps(describe_recording(_load(recording, rate_hz)), indent=2))


@app.command()
def windows(
    recording: Annotated[Path, typer.Argument(help="Recording CSV.", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="Output .npz with the windows.")],
    chain_json: Annotated[
        Path | None, typer.Option("--chain", help="Chain config JSON (default: built-in).")
    ] = None,
    rate_hz: RateOption = None,
) -> None:
    """Save a recording's windows (npz) from the offline signal chain."""
    import numpy as np

    from gaitedge.preprocess import ChainConfig, ChainInputError, run_offline

    cfg = ChainConfig.from_json(chain_json.read_text()) if chain_json else ChainConfig()
    rec = _load(recording, rate_hz)
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
VerboseOption = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only alerts and errors.")]


def _logging(verbose: int, quiet: bool) -> None:
    import logging

    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if not verbose and not quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _session(model, sinks, *, record=None):
    """Open a pipeline, turning every user error into one clear line and a non-zero exit."""
    from gaitedge.bundle import ContractError
    from gaitedge.runner import open_pipeline

    try:
        return open_pipeline(model, sinks, echo=typer.echo, record=record)
    except (ContractError, ValueError, OSError) as exc:
        raise fail(str(exc)) from exc


def _sinks(jsonl, webhook=None, mqtt=None, topic="gaitedge/alerts", lsl=False):
    from gaitedge.runner import SinkOptions

    return SinkOptions(jsonl, webhook, mqtt, topic, lsl)


def _print_status(rows) -> None:
    for row in rows:  # gaitedge.status.DeviceStatus
        typer.echo(row.line(), err=True)


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
    record: Annotated[
        Path | None, typer.Option("--record", help="Record the raw stream to this CSV.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
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
    from gaitedge.runner import run_sources
    from gaitedge.sources import BleSource, SerialSource, SourceError

    _logging(verbose, quiet)
    if not serial and not ble:
        raise fail("give at least one device: --serial PORT or --ble ADDRESS")
    sources = [SerialSource(p) for p in serial or []] + [BleSource(a) for a in ble or []]
    sinks = _sinks(alerts_jsonl, webhook, mqtt, mqtt_topic, lsl)
    with _session(model, sinks, record=record) as pipe:
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
    recording: Annotated[Path, typer.Argument(help="Recording CSV.", exists=True, dir_okay=False)],
    model: ModelOption = None,
    speed: Annotated[float, typer.Option("--speed", help="Playback speed factor.")] = 1.0,
    fast: Annotated[
        bool, typer.Option("--fast", help="As fast as possible, windows batched.")
    ] = False,
    rate_hz: RateOption = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
    alerts_jsonl: JsonlOption = None,
    webhook: WebhookOption = None,
    mqtt: MqttOption = None,
    mqtt_topic: TopicOption = "gaitedge/alerts",
    lsl: LslOption = False,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Replay a recording: activity timeline and alerts."""
    from gaitedge.runner import run_sources
    from gaitedge.sources import ReplaySource

    _logging(verbose, quiet)
    source = ReplaySource(recording, speed=speed, fast=fast, rate_hz=rate_hz)
    with _session(model, _sinks(alerts_jsonl, webhook, mqtt, mqtt_topic, lsl)) as pipe:
        try:
            run_sources(pipe, [source])
        except (ValueError, OSError) as exc:  # RecordingError, ChainInputError, ContractError
            raise fail(str(exc)) from exc
        summary = {"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}
        typer.echo(json.dumps(summary))
        if stats:
            _print_stats(pipe)


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
    model: ModelOption = None,
    alerts_jsonl: JsonlOption = None,
    quiet: QuietOption = False,
) -> None:
    """Offline demo: `listen --serial` on an emulated device.

    The device is a pseudo-terminal replaying the shipped demo recording.
    """
    from gaitedge.demo import DEMO_RECORDING, emulated_device
    from gaitedge.runner import run_sources
    from gaitedge.sources import SerialSource

    _logging(0, quiet)
    typer.echo(f"demo: replaying {DEMO_RECORDING.name} from an emulated device at {speed}x")
    with emulated_device(speed=speed) as device:
        typer.echo(f"demo: device on {device.path}; gaitedge listen --serial {device.path}")
        with _session(model, _sinks(alerts_jsonl)) as pipe:
            run_sources(
                pipe,
                [SerialSource(device.path, watchdog_s=5.0)],
                duration_s=duration,
                on_status=None if quiet else _print_status,
            )
            typer.echo(json.dumps({"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}))


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
            help="Subjects: test (held out, as recorded in the bundle), train or all.",
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
) -> None:
    """Score a model on held-out subjects (chain + ONNX Runtime)."""
    from gaitedge.bundle import ContractError
    from gaitedge.datasets import DatasetError, default_data_root
    from gaitedge.engine import OnnxEngine, default_model_path
    from gaitedge.evaluate import EvalOptions, EvaluationError
    from gaitedge.evaluate import evaluate as score

    if labels not in (None, 6, 12):
        raise typer.BadParameter("--labels must be 6 or 12")
    options = EvalOptions(dataset, split, labels, threshold, limit_subjects)
    try:
        engine = OnnxEngine(model if model is not None else default_model_path())
        result = score(engine, data_root or default_data_root(), options)
    except (ContractError, DatasetError, EvaluationError) as exc:
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
        typer.Argument(help="Recording CSV (default: the shipped demo recording).", dir_okay=False),
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
