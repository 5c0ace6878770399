"""The ``gaitedge`` command line: parsing and printing only; the work is in the library.

Heavy or optional imports (onnxruntime, bleak, pyserial, torch, tensorrt) stay inside the
commands that need them, so ``gaitedge --help`` starts fast and never imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
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
        help="The columns of any other CSV (read as --format csv), as a layout string, a "
        "layout JSON file or the name of a saved layout (gaitedge formats --help).",
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(
        "--rate-hz", help="Sample rate for CSV files without a timestamp_s column (seed format)."
    ),
]


def _positive(param: typer.CallbackParam, value: float | None) -> float | None:
    """An option's callback: a duration, speed or timeout is a positive, finite number."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise fail(f"{param.opts[0]} must be a positive number, not {value:g}")
    return value


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user error as one plain line (no box that wraps file paths) and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _calibrating(calibrate_first: bool, mount: str | None) -> None:
    """Refuse --calibrate-first beside a --mount that fixes the mounting (it was accepted and
    did nothing)."""
    if calibrate_first and mount is not None and mount != "auto":
        raise fail(
            f"--calibrate-first calibrates an automatic mounting; --mount {mount} fixes it: "
            "give one of them"
        )


def _keep_recording(recording: Path, *outputs: Path | None) -> None:
    """Refuse an output path that would write over (or append to) the recording a command
    reads, or a file of the export folder it reads."""
    source = recording.resolve()
    for out in outputs:
        if out is None:
            continue
        target = out.resolve()
        if target == source:
            raise fail(f"{out}: would overwrite the recording it reads")
        if source.is_dir() and target.is_relative_to(source) and target.exists():
            # a file of the export folder (one the reader reads, or beside them)
            raise fail(f"{out}: would overwrite a file of the export it reads ({recording})")


def _load(
    path: Path,
    rate_hz: float | None,
    strict: bool = False,
    device: str | None = None,
    fmt: str | None = None,
    layout: str | None = None,
    accelerometer_only: bool = False,
):
    from gaitedge.formats import ReadOptions, read
    from gaitedge.recording import RecordingError

    try:
        options = ReadOptions(rate_hz, strict, device, layout, accelerometer_only)
        return read(path, format=fmt, options=options)
    except RecordingError as exc:  # FormatError included
        raise fail(str(exc)) from exc


def _open(
    path: Path,
    rate_hz: float | None,
    strict: bool = False,
    device: str | None = None,
    fmt: str | None = None,
    layout: str | None = None,
    accelerometer_only: bool = False,
):
    """:func:`_load` in chunks (``gaitedge.formats.open_chunks``): a long recording streams."""
    from gaitedge.formats import ReadOptions, open_chunks
    from gaitedge.recording import RecordingError

    options = ReadOptions(rate_hz, strict, device, layout, accelerometer_only)
    try:
        return open_chunks(path, format=fmt, options=options)
    except RecordingError as exc:  # FormatError included
        raise fail(str(exc)) from exc


def _version_line() -> str:
    """``gaitedge <version> (model <name> <version>)``: the package and its shipped model."""
    from gaitedge.bundle import ContractError, shipped_model

    try:
        model = f"model {shipped_model()}"
    except ContractError as exc:
        model = f"model unavailable: {exc}"
    return f"gaitedge {__version__} ({model})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version (and the shipped model's) and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Gait and activity recognition from wearable IMUs, from recordings or live sensors."""


@app.command()
def version() -> None:
    """Print the gaitedge version and the shipped model's."""
    typer.echo(_version_line())


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
    from gaitedge.units import check_gravity_scale

    # what was recorded, whatever a model needs: an export without a gyroscope too
    rec = _load(recording, rate_hz, device=device, fmt=fmt, layout=layout, accelerometer_only=True)
    typer.echo(json.dumps(describe_recording(rec), indent=2))
    try:  # what replay refuses, said here too (inspect described data in g without a word)
        check_gravity_scale(rec.imu[:, :3], str(recording))
    except ValueError as exc:
        typer.echo(f"warning: {exc}; replay refuses it", err=True)


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
    from gaitedge.recording import RecordingError, write_chunks
    from gaitedge.summary import WallClock

    if str(out) == "-":  # it wrote a file named '-'
        raise fail("convert writes the canonical CSV to a file: give its path (not -)")
    _keep_recording(recording, out)
    # an export without a gyroscope converts to the canonical CSV of the accelerometer alone
    stream = _open(
        recording, rate_hz, strict=strict, device=device, fmt=fmt, layout=layout,
        accelerometer_only=True,
    )  # fmt: skip
    # Stamps on a clock of no date (SensorLog's seconds since the phone's reboot) whose export
    # states its start: written on the wall clock (epoch s), which the canonical CSV keeps
    # (summarize then dates it as it dates the export); it lost the date.
    chunks, first = stream, float(stream.first.timestamp_s[0])
    own = WallClock.of(first, local_clock=stream.local_clock, start_epoch_s=stream.start_epoch_s)
    if own.start_s is not None and own.start_s != first:  # dated by the export, not its stamps
        offset = own.start_s - first
        chunks = (dataclasses.replace(c, timestamp_s=c.timestamp_s + offset) for c in stream)
    try:
        n, duration_s = write_chunks(out, chunks)
    except RecordingError as exc:  # a bad row further on: the partial output is removed
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from exc
    typer.echo(f"{n} samples, {duration_s:.1f} s -> {out}")


@app.command()
def formats(
    save_layout: Annotated[
        str | None,
        typer.Option("--save-layout", help="Remember the --layout given under this name."),
    ] = None,
    layout: LayoutOption = None,
) -> None:
    """List the formats gaitedge reads (and what each needs) and the saved CSV layouts.

    Any other CSV reads with --layout LAYOUT (--format csv implied); save a layout once with
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
    if layout is not None:  # checked, then said what it is for (it was ignored, exit 0)
        try:
            generic.load_layout(layout)
        except (FormatError, OSError) as exc:
            raise fail(str(exc)) from exc
        raise fail(
            "--layout is remembered with --save-layout NAME; to read a CSV with it: "
            "gaitedge replay FILE --layout LAYOUT"
        )
    for info in list_formats():
        typer.echo(f"{info.name:<13} {info.title}")
        typer.echo(f"{'':<13} needs: {info.needs}")
    for name, spec in generic.list_layouts().items():
        typer.echo(f"layout {name:<6} {spec}")


@app.command()
def windows(
    recording: RecordingArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output .npz with the windows (written at this path).", dir_okay=False
        ),
    ],
    chain_json: Annotated[
        Path | None, typer.Option("--chain", help="Chain config JSON (default: built-in).")
    ] = None,
    rate_hz: RateOption = None,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
) -> None:
    """Save a recording's windows (npz) from the offline signal chain."""
    import io

    import numpy as np

    from gaitedge.preprocess import ChainConfig, ChainInputError, run_offline
    from gaitedge.private import write_private

    try:
        cfg = ChainConfig.from_json(chain_json.read_text()) if chain_json else ChainConfig()
    except (OSError, ValueError, TypeError) as exc:  # unreadable, not JSON, not a chain
        raise fail(f"{chain_json}: not a readable chain configuration: {exc}") from exc
    _keep_recording(recording, out)
    rec = _load(recording, rate_hz, fmt=fmt, layout=layout)
    try:
        result = run_offline(cfg, rec.timestamp_s, rec.imu)
    except ChainInputError as exc:
        raise fail(str(exc)) from exc
    try:
        # Through a buffer: numpy given a name without .npz writes NAME.npz instead (a
        # directory's name too), and this line would have named the file it did not write;
        # a person's windows are health data, the owner's alone (0600: gaitedge.private).
        npz = io.BytesIO()
        np.savez_compressed(
            npz,
            data=result.data,
            t_start_s=result.t_start_s,
            t_end_s=result.t_end_s,
            segment=result.segment,
            chain=cfg.to_json(),
        )
        write_private(out, npz.getvalue())
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from exc
    typer.echo(f"{len(result)} windows of {cfg.window_samples} x {cfg.n_channels} -> {out}")


ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="Model bundle (.onnx, or .engine with TensorRT), or a shipped bundle's file name "
        "(gaitedge-tiny.onnx). Default: shipped.",
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
    str | None,
    typer.Option(
        "--webhook",
        help="POST each alert as JSON to this URL (https:// checks the certificate), signed "
        "with $GAITEDGE_WEBHOOK_SECRET or --webhook-secret-file (X-Gaitedge-Signature).",
    ),
]
MqttOption = Annotated[
    str | None,
    typer.Option(
        "--mqtt",
        help="Publish alerts to an MQTT broker: mqtts://[USER@]HOST[:PORT][/TOPIC] (TLS), "
        "mqtt://... or HOST[:PORT] (plain). Password: $GAITEDGE_MQTT_PASSWORD or "
        "--mqtt-password-file, never in the URL.",
    ),
]
TopicOption = Annotated[
    str | None,
    typer.Option("--mqtt-topic", help="MQTT topic for alerts (default: gaitedge/alerts)."),
]
LslOption = Annotated[bool, typer.Option("--lsl", help="Also push alerts to an LSL outlet.")]
MqttUserOption = Annotated[
    str | None, typer.Option("--mqtt-user", help="MQTT user name (or USER@ in the URL).")
]
MqttPasswordFileOption = Annotated[
    Path | None, typer.Option("--mqtt-password-file", help="File holding the MQTT password.")
]
MqttCaOption = Annotated[
    Path | None, typer.Option("--mqtt-ca", help="CA (PEM) to trust for the broker's certificate.")
]
MqttCertOption = Annotated[
    Path | None, typer.Option("--mqtt-cert", help="Client certificate (PEM) for the broker.")
]
MqttKeyOption = Annotated[
    Path | None, typer.Option("--mqtt-key", help="Private key (PEM) of --mqtt-cert.")
]
WebhookCaOption = Annotated[
    Path | None, typer.Option("--webhook-ca", help="CA (PEM) to trust for the webhook's server.")
]
WebhookSecretFileOption = Annotated[
    Path | None,
    typer.Option("--webhook-secret-file", help="File holding the webhook signing secret."),
]
WebhookTokenFileOption = Annotated[
    Path | None,
    typer.Option("--webhook-token-file", help="File holding a bearer token for the webhook."),
]
HttpOption = Annotated[
    str | None,
    typer.Option(
        "--http",
        help="Listen for phones pushing over HTTP (Sensor Logger's HTTP Push) on HOST:PORT; "
        "every phone is a device.",
    ),
]
HttpTokenOption = Annotated[
    Path | None,
    typer.Option(
        "--http-token-file",
        help="File holding the token phones must send (Authorization: Bearer, or ?token= in the "
        "push URL); else $GAITEDGE_HTTP_TOKEN or the systemd credential gaitedge.http-token; "
        "default: a new random one, printed with the push URL. Never on the command line.",
    ),
]
HttpCertOption = Annotated[
    Path | None,
    typer.Option("--http-cert", help="Serve --http over TLS with this certificate (PEM)."),
]
HttpKeyOption = Annotated[
    Path | None, typer.Option("--http-key", help="The private key of --http-cert (PEM).")
]
MqttInOption = Annotated[
    str | None,
    typer.Option(
        "--mqtt-in",
        help="Subscribe to phones' push messages on a broker: mqtt(s)://[USER@]HOST[:PORT]/TOPIC "
        "(password: $GAITEDGE_MQTT_PASSWORD).",
    ),
]
PhyphoxOption = Annotated[
    list[str] | None,
    typer.Option(
        "--phyphox",
        help="Poll a phone running phyphox with remote access on: http://PHONE:8080 (repeatable).",
    ),
]
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
        "$GAITEDGE_MOUNT_FILE, else mounting.json in $STATE_DIRECTORY (systemd's "
        "StateDirectory=), else in the user's cache directory; replay: none).",
    ),
]
CalibrateFirstOption = Annotated[
    bool,
    typer.Option(
        "--calibrate-first",
        help="Calibrate an automatic mounting on the whole recording before scoring it "
        "(look-ahead: no live device can). Default: start from --mount-file's stored estimate, "
        "else cold, and calibrate online as `listen` does.",
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
WebOption = Annotated[
    str | None,
    typer.Option(
        "--web",
        metavar="[HOST:]PORT",
        help="Serve a live page of the session at [HOST:]PORT (host 127.0.0.1 unless given; "
        "any other host needs a token in $GAITEDGE_WEB_TOKEN or a file named by "
        "$GAITEDGE_WEB_TOKEN_FILE).",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only alerts and errors.")]


def _logging(verbose: int, quiet: bool) -> None:
    import logging

    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if not verbose and not quiet:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _session(
    model, sinks, *, record=None, mount=None, mount_file=None, strict=False, provider="cpu",
    acc_range_g=None, warn_unwritable_mount_file=False, shadow=False, fast=False,
):  # fmt: skip
    """Open a pipeline, turning every user error into one clear line and a non-zero exit
    (``fast``: a file as fast as it goes, its large engine calls on the cores there are)."""
    from gaitedge.bundle import ContractError
    from gaitedge.engine import EngineUnavailableError
    from gaitedge.runner import fast_batch_threads, open_pipeline
    from gaitedge.sinks import SinkUnavailableError

    try:
        return open_pipeline(
            model, sinks, echo=typer.echo, record=record, mount=mount, mount_file=mount_file,
            strict=strict, provider=provider, acc_range_g=acc_range_g,
            warn_unwritable_mount_file=warn_unwritable_mount_file, shadow=shadow,
            batch_threads=fast_batch_threads() if fast else 1,
        )  # fmt: skip
    except (
        ContractError,
        EngineUnavailableError,
        SinkUnavailableError,
        ValueError,
        OSError,
    ) as exc:
        raise fail(str(exc)) from exc


def _sinks(jsonl, webhook=None, mqtt=None, topic=None, lsl=False, **secure):
    from gaitedge.runner import SinkOptions

    return SinkOptions(jsonl, webhook, mqtt, topic, lsl, **secure)


def _web(address, pipe, sources, command: str, **options):
    """``--web``: serve the session's live page while the block runs (no-op without it)."""
    import contextlib

    if address is None:
        return contextlib.nullcontext()
    from gaitedge.web import WebError, WebSession

    try:
        view = WebSession(address, pipe, sources, command=command, **options)
    except WebError as exc:
        raise fail(str(exc)) from exc
    token = " (add ?token=<your token>)" if view.server.token else ""
    held = " (it stays up after the replay until Ctrl-C)" if options.get("hold") else ""
    typer.echo(f"web view: {view.url}{token}{held}", err=True)
    return view


HTTP_TOKEN_CREDENTIAL = "gaitedge.http-token"  # systemd LoadCredential= name


def _phone_sources(http, token_file, cert, key, mqtt_in, phyphox) -> list:
    """``listen``'s phones over the network; a generated token is printed with the push URL."""
    import secrets

    from gaitedge.private import read_secret
    from gaitedge.sources import HttpSource, MqttSource, PhyphoxSource, SourceError
    from gaitedge.sources.http import parse_listen_address

    sources = []
    try:
        if http is not None:
            token = read_secret(
                "HTTP token", file=token_file, env="GAITEDGE_HTTP_TOKEN",
                credential=HTTP_TOKEN_CREDENTIAL,
            )  # fmt: skip
            host, port = parse_listen_address(http)
            source = HttpSource(
                host, port, token=token or secrets.token_urlsafe(16), certfile=cert, keyfile=key
            )
            source.listen()  # bound before its URL is given out (a busy port said first)
            url = source.push_url if not token else source.push_url.replace(token, "<token>")
            typer.echo(f"phones: push to {url} (Sensor Logger: HTTP Push URL)", err=True)
            sources.append(source)
        elif token_file or cert or key:
            raise ValueError(
                "--http-token-file, --http-cert and --http-key go with --http HOST:PORT"
            )
        if mqtt_in is not None:
            sources.append(MqttSource(mqtt_in))
        sources += [PhyphoxSource(url) for url in phyphox or []]
    except ValueError as exc:
        raise fail(str(exc)) from exc
    except SourceError as exc:  # a busy port, a certificate that cannot be served
        raise fail(str(exc), code=1) from exc
    return sources


def _print_status(rows, playback_speed: float = 1.0) -> None:
    for row in rows:  # gaitedge.status.DeviceStatus
        typer.echo(row.line(playback_speed), err=True)


def _print_stats(pipeline) -> None:
    summary = {"latency": pipeline.stats.latency_summary(), "sinks": pipeline.sinks.stats()}
    typer.echo(json.dumps(summary), err=True)


DeviceTypeOption = Annotated[
    str | None,
    typer.Option(
        "--device-type",
        help="With --ble: the sensor's make (gaitedge, polar, metawear, movesense, thingy, gatt); "
        "default: detected from its GATT services.",
    ),
]
GattLayoutOption = Annotated[
    Path | None,
    typer.Option(
        "--gatt-layout",
        help="With --ble: a GATT layout JSON (service, characteristics, struct, units, rate) "
        "for a board of your own; implies --device-type gatt.",
    ),
]


def _ble_source(address: str, device_type: str | None, gatt_layout: Path | None, **kwargs):
    """A BleSource, its --device-type and --gatt-layout checked before anything connects."""
    from gaitedge.devices import DEVICES
    from gaitedge.devices.gatt import LayoutError, load_layout
    from gaitedge.sources import BleSource

    options = {}
    if gatt_layout is not None:
        if device_type not in (None, "gatt"):
            raise fail("--gatt-layout goes with --device-type gatt (or none)")
        try:
            options["layout"] = load_layout(gatt_layout)
        except LayoutError as exc:
            raise fail(str(exc)) from exc
        device_type = "gatt"
    if device_type is not None and device_type not in DEVICES:
        raise fail(f"unknown --device-type {device_type!r}; known: {', '.join(DEVICES)}")
    return BleSource(address, device_type=device_type, profile_options=options, **kwargs)


@app.command()
def listen(
    serial: Annotated[
        list[str] | None, typer.Option("--serial", help="Serial port of a device (repeatable).")
    ] = None,
    ble: Annotated[
        list[str] | None,
        typer.Option(
            "--ble", help="BLE address (macOS: the per-host UUID) of a device (repeatable)."
        ),
    ] = None,
    device_type: DeviceTypeOption = None,
    gatt_layout: GattLayoutOption = None,
    http: HttpOption = None,
    http_token: HttpTokenOption = None,
    http_cert: HttpCertOption = None,
    http_key: HttpKeyOption = None,
    mqtt_in: MqttInOption = None,
    phyphox: PhyphoxOption = None,
    model: ModelOption = None,
    provider: ProviderOption = "cpu",
    record: Annotated[
        Path | None, typer.Option("--record", help="Record the raw stream to this CSV.")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds.", callback=_positive),
    ] = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="For devices that decide on their own (protocol 1.2 result frames): run the "
            "host model beside them on their raw samples and count disagreements.",
        ),
    ] = False,
    mount: MountOption = None,
    mount_file: MountFileOption = None,
    strict: StrictOption = False,
    alerts_jsonl: JsonlOption = None,
    webhook: WebhookOption = None,
    mqtt: MqttOption = None,
    mqtt_topic: TopicOption = None,
    lsl: LslOption = False,
    mqtt_user: MqttUserOption = None,
    mqtt_password_file: MqttPasswordFileOption = None,
    mqtt_ca: MqttCaOption = None,
    mqtt_cert: MqttCertOption = None,
    mqtt_key: MqttKeyOption = None,
    webhook_ca: WebhookCaOption = None,
    webhook_secret_file: WebhookSecretFileOption = None,
    webhook_token_file: WebhookTokenFileOption = None,
    web: WebOption = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Stream live sensors: status, activity and fall alerts (a device's own, if it decides)."""
    from gaitedge.bundle import ContractError
    from gaitedge.mounting import default_mount_file
    from gaitedge.runner import run_sources
    from gaitedge.sources import SerialSource, SourceError

    _logging(verbose, quiet)
    if not serial and not ble and not http and not mqtt_in and not phyphox:
        raise fail(
            "give at least one device: --serial PORT, --ble ADDRESS, --http HOST:PORT, "
            "--mqtt-in URL/TOPIC or --phyphox http://PHONE:8080"
        )
    if shadow and not serial and not ble:
        raise fail("--shadow compares a gaitedge device's own decisions: give --serial or --ble")
    sources = [SerialSource(p) for p in serial or []] + [
        _ble_source(a, device_type, gatt_layout) for a in ble or []
    ]
    sources += _phone_sources(http, http_token, http_cert, http_key, mqtt_in, phyphox)
    sinks = _sinks(
        alerts_jsonl, webhook, mqtt, mqtt_topic, lsl, mqtt_user=mqtt_user,
        mqtt_password_file=mqtt_password_file, mqtt_ca=mqtt_ca, mqtt_cert=mqtt_cert,
        mqtt_key=mqtt_key, webhook_ca=webhook_ca, webhook_secret_file=webhook_secret_file,
        webhook_token_file=webhook_token_file,
    )  # fmt: skip
    session = _session(
        model, sinks, record=record, mount=mount,
        mount_file=mount_file or default_mount_file(), strict=strict, provider=provider,
        shadow=shadow,
    )  # fmt: skip
    with session as pipe, _web(web, pipe, sources, "listen"):
        for source in sources:  # a sensor without a gyroscope: run, or refused at connect
            if hasattr(source, "no_gyroscope_refusal"):
                source.no_gyroscope_refusal = pipe.no_gyroscope_refusal()
        try:
            run_sources(
                pipe, sources, duration_s=duration, on_status=None if quiet else _print_status
            )
        except (SourceError, ContractError) as exc:  # device gone, or data the model refuses
            raise fail(str(exc), code=1) from exc
        finally:  # what a listener refused before any phone (no status line counts it)
            for source in sources:
                line = source.refused_line() if hasattr(source, "refused_line") else None
                if line is not None:
                    typer.echo(line, err=True)
        if shadow:  # one line per device that decided: device vs host model
            for row in pipe.device_status():
                if row.shadow is not None:
                    typer.echo(json.dumps({"device": row.device, "shadow": row.shadow}), err=True)
        if stats:
            _print_stats(pipe)
    if pipe.recording_error is not None:  # the session went on; the file stopped short
        exc = pipe.recording_error
        raise fail(f"recording {record} stopped short: {exc.strerror or exc}", code=1)
    _check_delivered(pipe)


@app.command()
def replay(
    recording: RecordingArg,
    model: ModelOption = None,
    provider: ProviderOption = "cpu",
    speed: Annotated[
        float, typer.Option("--speed", help="Playback speed factor.", callback=_positive)
    ] = 1.0,
    fast: Annotated[
        bool, typer.Option("--fast", help="As fast as possible, windows batched.")
    ] = False,
    rate_hz: RateOption = None,
    stats: Annotated[bool, typer.Option("--stats", help="Print latency histograms.")] = False,
    mount: MountOption = None,
    mount_file: MountFileOption = None,
    calibrate_first: CalibrateFirstOption = False,
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
    mqtt_topic: TopicOption = None,
    lsl: LslOption = False,
    mqtt_user: MqttUserOption = None,
    mqtt_password_file: MqttPasswordFileOption = None,
    mqtt_ca: MqttCaOption = None,
    mqtt_cert: MqttCertOption = None,
    mqtt_key: MqttKeyOption = None,
    webhook_ca: WebhookCaOption = None,
    webhook_secret_file: WebhookSecretFileOption = None,
    webhook_token_file: WebhookTokenFileOption = None,
    web: WebOption = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Replay a recording (gaitedge's CSV or an app's export): activity timeline and alerts.

    What `listen` would have said: the mounting starts from --mount-file's stored estimate
    (else cold) and calibrates online; --calibrate-first calibrates on the whole file first."""
    from gaitedge.runner import calibrate_chunks, reads_acc_only, run_sources
    from gaitedge.sources import ReplaySource

    _logging(verbose, quiet)
    _keep_recording(recording, alerts_jsonl, mount_file)
    _calibrating(calibrate_first, mount)
    read = {"strict": strict, "device": device, "fmt": fmt, "layout": layout}
    read["accelerometer_only"] = reads_acc_only(model)
    # --web serves any stretch of the signal, so it keeps the recording in memory; otherwise
    # the file streams (twice with --calibrate-first).
    rec = _load(recording, rate_hz, **read) if web is not None else None
    chunks = [rec] if rec is not None else _open(recording, rate_hz, **read)
    source = ReplaySource(chunks=chunks, speed=speed, fast=fast, device=device or recording.name)
    sinks = _sinks(
        alerts_jsonl, webhook, mqtt, mqtt_topic, lsl, mqtt_user=mqtt_user,
        mqtt_password_file=mqtt_password_file, mqtt_ca=mqtt_ca, mqtt_cert=mqtt_cert,
        mqtt_key=mqtt_key, webhook_ca=webhook_ca, webhook_secret_file=webhook_secret_file,
        webhook_token_file=webhook_token_file,
    )  # fmt: skip
    session = _session(
        model, sinks, mount=mount,
        mount_file=mount_file, strict=strict, provider=provider, acc_range_g=acc_range_g,
        warn_unwritable_mount_file=True,  # replay goes on; it only loses the saving
        fast=fast,
    )  # fmt: skip
    with (
        session as pipe,
        _web(web, pipe, [source], "replay", recording=rec, speed=speed, hold=True),
    ):
        pairs = _pairs(rec, recording, rate_hz, read)
        try:
            outcome = calibrate_chunks(pipe, source.device, pairs) if calibrate_first else ""
        except ValueError as exc:  # RecordingError, ChainInputError
            raise fail(str(exc)) from exc
        _say_calibrated_first(recording, outcome)
        try:
            run_sources(pipe, [source])
        except (ValueError, OSError) as exc:  # RecordingError, ChainInputError, ContractError
            raise fail(str(exc)) from exc
        if not quiet:
            _say_outcome(pipe)
        summary = {"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}
        typer.echo(json.dumps(summary))
        if stats:
            _print_stats(pipe)
    _check_delivered(pipe)


def _say_calibrated_first(recording: Path, outcome: str) -> None:
    """What --calibrate-first found, when it could not calibrate."""
    if outcome == "too_little_walking":
        typer.echo(
            f"warning: {recording.name} has less than 20 s of walking to calibrate the "
            "mounting from: activity is held back until it has (give --mount none if it is "
            "in the model's body frame, or --mount-file with a stored estimate)",
            err=True,
        )


def _check_delivered(pipe) -> None:
    """After the session (its sinks closed): an alert the command was asked to send and did
    not is an error, exit 1 (a script publishing alerts must not read success from a down
    broker, a full disk or a failing webhook)."""
    lost = pipe.sinks.undelivered()
    if lost:
        made = pipe.stats.alerts
        where = ", ".join(f"{count} of {made} to {name}" for name, count in lost.items())
        raise fail(f"alerts not delivered: {where}", code=1)


def _say_outcome(pipe) -> None:
    """Stderr lines per device: why it made no window (and nothing else then); that its
    samples came slower than the model's figures hold for; whether its automatic mounting
    calibrated online or never did, and what the runtime did with activity meanwhile."""
    from gaitedge.formats.join import MIN_RATE_HZ
    from gaitedge.runner import no_window_why

    for name, state in pipe.devices.items():
        if not state.windows and not state.decides and state.chain.stats.samples_in:
            typer.echo(f"{name}: no window was made: {no_window_why(state.chain)}", err=True)
            continue  # (its mounting's state says nothing then)
        rate, model_hz = state.chain.stats.input_rate_hz, state.chain.cfg.sample_rate_hz
        if rate is not None and rate < MIN_RATE_HZ:
            typer.echo(
                f"{name}: its samples come at {rate:.3g} Hz, below {MIN_RATE_HZ:g} Hz: the model "
                f"({model_hz:g} Hz) saw them interpolated, a rate its figures were not measured at",
                err=True,
            )
        est = state.chain.mounting.estimator
        if est is None or state.activity is None or est.restored:
            continue
        cold = state.companion_alerts > 0  # the cold-start model spoke meanwhile
        if state.calibrated_at_s is not None:
            before = (
                "activity before that came from the cold-start model (marked cold start)"
                if cold
                else "activity was held back before that"
            )
            typer.echo(
                f"{name}: the mounting calibrated online at t={state.calibrated_at_s:.1f} s; "
                f"{before}",
                err=True,
            )
        elif not state.chain.mounting.calibrated and cold:
            typer.echo(
                f"{name}: the mounting never calibrated ({est.walking_s:.0f} s of walking); "
                "activity came from the cold-start model all along (marked cold start; "
                "--mount-file for a stored estimate, --calibrate-first to calibrate on the "
                "whole file)",
                err=True,
            )
        elif not state.chain.mounting.calibrated:
            typer.echo(
                f"{name}: the mounting never calibrated ({est.walking_s:.0f} s of walking); "
                "activity was held back and reported once at the end, marked uncalibrated "
                "(--mount none for a recording in the model's body frame, --mount-file for a "
                "stored estimate, --calibrate-first to calibrate on the whole file)",
                err=True,
            )


def _pairs(rec, path: Path, rate_hz: float | None, read: dict):
    """(timestamps, imu) of a recording in memory, or of its file streamed again (opened only
    when iterated)."""
    for chunk in [rec] if rec is not None else _open(path, rate_hz, **read):
        yield chunk.timestamp_s, chunk.imu


@app.command()
def summarize(
    recording: RecordingArg,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the CSV, JSON and PNG.", file_okay=False)
    ] = Path("."),
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            help="IANA time zone for recordings stamped in UTC (default UTC); not for a "
            "device-local clock (Axivity).",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Local wall-clock time of the first sample (2024-03-04T09:15) for a recording "
            "without absolute time (default: day 1, 00:00).",
        ),
    ] = None,
    plot: Annotated[
        bool, typer.Option("--plot/--no-plot", help="Draw the week's PNG (needs matplotlib).")
    ] = True,
    model: ModelOption = None,
    mount: MountOption = None,
    mount_file: MountFileOption = None,
    calibrate_first: CalibrateFirstOption = False,
    rate_hz: RateOption = None,
    device: DeviceOption = None,
    strict: StrictOption = False,
    fmt: FormatOption = None,
    layout: LayoutOption = None,
) -> None:
    """Per day and hour: minutes in each activity, wear and non-wear, falls; written as CSV,
    JSON and a picture of the week (the recording streams: any length).

    As `replay`: the mounting starts from --mount-file's stored estimate (else cold) and
    calibrates online; --calibrate-first calibrates on the whole file first."""
    import datetime as dt

    from gaitedge.runner import calibrate_chunks, reads_acc_only
    from gaitedge.summary import SummaryError, WallClock, require_matplotlib
    from gaitedge.summary import summarize as run

    try:
        first = dt.datetime.fromisoformat(start) if start is not None else None
    except ValueError as exc:
        raise typer.BadParameter(f"--start {start!r} is not an ISO date and time") from exc
    _calibrating(calibrate_first, mount)
    read = {"strict": strict, "device": device, "fmt": fmt, "layout": layout}
    read["accelerometer_only"] = reads_acc_only(model)
    stream = _open(recording, rate_hz, **read)
    name = device or recording.name
    try:
        if plot:
            require_matplotlib()
        clock = WallClock.of(
            float(stream.first.timestamp_s[0]), local_clock=stream.local_clock,
            start_epoch_s=stream.start_epoch_s, tz=tz, start=first,
        )  # fmt: skip
        own = WallClock.of(
            float(stream.first.timestamp_s[0]), local_clock=stream.local_clock,
            start_epoch_s=stream.start_epoch_s,
        )  # fmt: skip
    except SummaryError as exc:
        raise fail(str(exc)) from exc
    if first is not None and own.start_s is not None:  # it replaced the clock in silence
        typer.echo(
            f"warning: --start replaces {recording.name}'s own clock "
            f"(it starts at {own.local(0.0):%Y-%m-%d %H:%M:%S} {own.tz or 'device time'})",
            err=True,
        )
    with _session(
        model, None, mount=mount, mount_file=mount_file, strict=strict, fast=True
    ) as pipe:
        try:
            if calibrate_first:
                outcome = calibrate_chunks(pipe, name, _pairs(None, recording, rate_hz, read))
                _say_calibrated_first(recording, outcome)
            # one device of several: its own files (another device's summary kept beside it)
            shown = recording.name if device is None else f"{recording.name} ({device})"
            summary = run(pipe, stream, name=shown, clock=clock, device=name)
        except (ValueError, OSError) as exc:  # RecordingError, ChainInputError, ContractError
            raise fail(str(exc)) from exc
        _say_outcome(pipe)  # as replay says it: no window, a slow sensor, the calibration
    try:
        stem = recording.stem
        if device is not None:
            stem += "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", device)
        paths = summary.write(out, stem, picture=plot)
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from exc
    for path in paths:
        typer.echo(f"wrote {path}", err=True)
    typer.echo(json.dumps({"totals_min": summary.totals(), "falls": len(summary.falls)}))


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
        float,
        typer.Option(
            "--duration",
            help="Live: seconds to listen (walk meanwhile).",
            callback=_positive,
        ),
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
    from gaitedge.engine import model_path
    from gaitedge.mounting import MountingError, MountStore, default_mount_file
    from gaitedge.preprocess import calibrate_stream as estimate_stream

    if (recording is None) == (serial is None and ble is None) or (serial and ble):
        raise fail("give one recording CSV, or one live device (--serial PORT or --ble ADDRESS)")
    if device_id is not None and not device_id.strip():  # it fell back to the file's name
        raise fail("--device-id is empty; give the id to store the mounting under")
    mount_file = mount_file or default_mount_file()
    try:
        cfg = read_contract(model_path(model)).chain
        store = MountStore(mount_file)
        store.check_writable()  # before the work, not after it
    except (ContractError, MountingError) as exc:
        raise fail(str(exc)) from exc
    if recording is None:
        _calibrate_live(serial, ble, duration, model, mount_file)
        return
    # Streamed, block by block: a week's recording in the memory of a block (it was read
    # whole: ~600 bytes a sample, 2.6 GB a day).
    stream = _open(recording, rate_hz, device=device, fmt=fmt, layout=layout)
    try:
        est = estimate_stream(cfg, ((c.timestamp_s, c.imu) for c in stream))
    except ValueError as exc:  # RecordingError, ChainInputError
        raise fail(str(exc)) from exc
    # Stored under the name replay and summarize give this file (its --device, else its file
    # name), and, when it is a listen --record file, under its device's id (the service's).
    names = [device_id] if device_id is not None else [device or recording.name]
    ids = stream.first.device_id if stream.first is not None else None
    if device_id is None and ids is not None and len(ids) and str(ids[0]) not in names:
        names.insert(0, str(ids[0]))
    name = names[0]
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
    for each in names:
        store.put(each, est)
    store.save()
    also = f" (and of {names[1]}, as replay names this file)" if len(names) > 1 else ""
    typer.echo(f"saved the mounting of {name}{also} to {mount_file}", err=True)


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
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to scan.", callback=_positive)
    ] = 5.0,
) -> None:
    """List nearby BLE sensors gaitedge can stream from, with their type (--device-type)."""
    import asyncio

    from gaitedge.sources import SourceError
    from gaitedge.sources import scan as ble_scan

    try:
        found = asyncio.run(ble_scan(timeout))
    except SourceError as exc:
        raise fail(str(exc), code=1) from exc
    if not found:
        typer.echo("no supported devices found")
    for device in found:
        typer.echo(f"{device.address}  {device.kind:<9}  {device.name}  rssi={device.rssi}")


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option("--duration", help="Seconds to run.", callback=_positive)
    ] = 20.0,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="Emulator playback speed (real time = 1).", callback=_positive
        ),
    ] = 4.0,
    ble: Annotated[
        bool,
        typer.Option("--ble", help="Over an emulated BLE link (bleak on a private D-Bus)."),
    ] = False,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="phone: an emulated phone running Sensor Logger pushes the recording over "
            "HTTP to `listen --http`; polar, metawear, movesense, thingy, science-journal, "
            "uart-csv: that sensor, emulated on an emulated BlueZ, streams it to `listen --ble`.",
        ),
    ] = None,
    model: ModelOption = None,
    mount: MountOption = None,
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="A brand-new device: no stored mounting estimate (activity held back until "
            "it has walked 20 s).",
        ),
    ] = False,
    calibrate_first: CalibrateFirstOption = False,
    alerts_jsonl: JsonlOption = None,
    web: WebOption = None,
    quiet: QuietOption = False,
) -> None:
    """Offline demo: `listen` on an emulated serial (or BLE) device.

    The device replays the shipped demo recording over a pseudo-terminal or an emulated BlueZ.
    It starts from the estimate its wearer's earlier session stored (another recording of the
    same person) and calibrates online, as a live device worn before does.
    """
    import functools
    import os

    start = "calibrate_first" if calibrate_first else ("cold" if cold else "stored")
    if device == "phone":
        return _demo_phone(duration, speed, model, mount, alerts_jsonl, quiet, start)
    if device in DEMO_SENSORS:
        return _demo_sensor(device, duration, speed, model, mount, alerts_jsonl, quiet, start)
    if device is not None:
        raise fail(f"--device {device!r}: expected phone or one of {', '.join(DEMO_SENSORS)}")
    from gaitedge.demo import DEMO_RECORDING, emulated_ble_device, emulated_device
    from gaitedge.runner import run_sources
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
            session = _session(model, _sinks(alerts_jsonl), mount=mount)
            with session as pipe, _web(web, pipe, [source], "demo", speed=speed):
                _demo_mounting(pipe, source.device, start)
                status = functools.partial(_print_status, playback_speed=speed)
                run_sources(
                    pipe, [source], duration_s=duration, on_status=None if quiet else status
                )
                typer.echo(json.dumps({"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}))
    except typer.Exit:  # an option refused in its one line (click's Exit is a RuntimeError)
        raise
    except (SourceError, RuntimeError) as exc:  # the link failed, or no dbus-daemon for --ble
        raise fail(str(exc), code=1) from exc
    _check_delivered(pipe)


DEMO_SENSORS = ("polar", "metawear", "movesense", "thingy", "science-journal", "uart-csv")


def _demo_mounting(pipe, device: str, start: str) -> None:
    """How the demo device's mounting starts: ``stored`` (its wearer's earlier session, then
    online), ``cold`` (online from nothing) or ``calibrate_first`` (on the played recording)."""
    from gaitedge.demo import DEMO_RECORDING, demo_mount_store
    from gaitedge.recording import read_recording
    from gaitedge.runner import calibrate_recording

    cfg = pipe.contract.chain
    if (pipe.mount or cfg.mounting) != "auto":
        return
    if start == "calibrate_first":
        rec = read_recording(DEMO_RECORDING)
        if calibrate_recording(pipe, device, rec.timestamp_s, rec.imu) == "calibrated":
            typer.echo("demo: the mounting is calibrated on the played recording (look-ahead)")
    elif start == "stored":
        pipe.mount_store = demo_mount_store(device, cfg.sample_rate_hz)
        typer.echo("demo: the mounting starts from the wearer's stored estimate, then online")
    else:
        typer.echo("demo: a new device: the mounting calibrates online (activity held back)")


def _demo_sensor(kind, duration, speed, model, mount, alerts_jsonl, quiet, start) -> None:
    """``demo --device polar|...``: that sensor, emulated, streaming to ``listen --ble``."""
    import functools
    import os

    from firmware_bridge.peripherals import emulated_peripheral
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.runner import run_sources
    from gaitedge.sources import BleSource, SourceError

    _logging(0, quiet)
    typer.echo(f"demo: replaying {DEMO_RECORDING.name} from an emulated {kind} at {speed}x")
    try:
        with emulated_peripheral(kind, DEMO_RECORDING, speed=speed) as device:
            source = BleSource(device.address, watchdog_s=5.0)
            bus = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]  # the emulated BlueZ's private bus
            typer.echo(
                f"demo: {device.name} on an emulated BlueZ; "
                f"DBUS_SYSTEM_BUS_ADDRESS={bus} gaitedge listen --ble {device.address}"
            )
            with _session(model, _sinks(alerts_jsonl), mount=mount) as pipe:
                _demo_mounting(pipe, source.device, start)
                status = functools.partial(_print_status, playback_speed=speed)
                run_sources(
                    pipe, [source], duration_s=duration, on_status=None if quiet else status
                )
                summary = {"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}
                summary |= {"device_type": source.device_type, "model": source.profile.model}
                typer.echo(json.dumps(summary))
    except typer.Exit:  # an option refused in its one line (click's Exit is a RuntimeError)
        raise
    except (SourceError, RuntimeError) as exc:  # the link failed, or no dbus-daemon
        raise fail(str(exc), code=1) from exc
    _check_delivered(pipe)


def _demo_phone(duration, speed, model, mount, alerts_jsonl, quiet, start) -> None:
    """``demo --device phone``: Sensor Logger (emulated) pushing to ``listen --http``."""
    import functools
    import secrets

    from firmware_bridge.phones import PushConfig, emulated_sensor_logger
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.recording import read_recording
    from gaitedge.runner import run_sources
    from gaitedge.sources import HttpSource, SourceError

    _logging(0, quiet)
    rec = read_recording(DEMO_RECORDING)
    source = HttpSource("127.0.0.1", 0, token=secrets.token_urlsafe(16))
    try:
        source.listen()  # the port the system chose, bound: no other process can take it
    except SourceError as exc:
        raise fail(str(exc), code=1) from exc
    config = PushConfig(platform="ios")
    typer.echo(
        f"demo: an emulated iPhone running Sensor Logger pushes {DEMO_RECORDING.name} at "
        f"{speed}x to gaitedge listen --http 127.0.0.1:{source.port}"
    )
    with _session(model, _sinks(alerts_jsonl), mount=mount) as pipe:
        _demo_mounting(pipe, config.device_id, start)
        status = functools.partial(_print_status, playback_speed=speed)
        with emulated_sensor_logger(
            source.push_url, rec.timestamp_s, rec.imu, config=config, speed=speed
        ):
            try:
                run_sources(
                    pipe, [source], duration_s=duration, on_status=None if quiet else status
                )
            except SourceError as exc:
                raise fail(str(exc), code=1) from exc
        typer.echo(json.dumps({"windows": pipe.stats.windows, "alerts": pipe.stats.alerts}))
    _check_delivered(pipe)


@app.command()
def info(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="Model bundle (.onnx, or .engine with its .json), or the file name of a shipped "
            "one (gaitedge-acc.onnx). Default: the shipped default model."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the contract as JSON.")] = False,
) -> None:
    """Describe a model: chain, windows, normalisation, heads."""
    from gaitedge.bundle import ContractError, read_contract
    from gaitedge.engine import model_path
    from gaitedge.info import describe_contract

    try:
        contract = read_contract(model_path(model))
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
    mount_file: Annotated[
        Path | None,
        typer.Option(
            "--mount-file",
            help="Stored mounting estimates per subject id (hapt:9, sisfall:SA03): each "
            "subject's device starts from its estimate. Default: every recording starts cold.",
        ),
    ] = None,
    calibrate_first: CalibrateFirstOption = False,
    provider: ProviderOption = "cpu",
) -> None:
    """Score a model on held-out subjects (chain + ONNX Runtime).

    The mounting calibrates online as `listen`'s does (activity before it is calibrated counts
    as no output); --calibrate-first calibrates each subject's device on all of its recordings
    first (look-ahead)."""
    from gaitedge.bundle import ContractError
    from gaitedge.datasets import DatasetError, default_data_root
    from gaitedge.engine import EngineUnavailableError, OnnxEngine, model_path
    from gaitedge.evaluate import EvalOptions, EvaluationError
    from gaitedge.evaluate import evaluate as score

    _calibrating(calibrate_first, mount)
    try:
        options = EvalOptions(
            dataset, split, labels, threshold, limit_subjects, mount, calibrate_first,
            None if mount_file is None else str(mount_file),
        )  # fmt: skip
        engine = OnnxEngine(model_path(model), provider=provider)
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
        keys = ("macro_f1", "accuracy", "sensitivity", "specificity", "n_windows", "n_subjects",
                "mounting_start", "windows_held_back")  # fmt: skip
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
        int,
        typer.Option("--chunk-samples", help="Samples per chunk, as frames arrive.", min=1),
    ] = 4,
) -> None:
    """Per-stage latency and sensors per core, streamed as live."""
    from gaitedge.bundle import ContractError
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.preprocess import ChainInputError
    from gaitedge.runner import measure_live, reads_acc_only

    path = recording or DEMO_RECORDING
    rec = _load(path, None, accelerometer_only=reads_acc_only(model))
    with _session(model, None) as pipe:  # no sinks: time the pipeline only
        try:
            cost = measure_live(pipe, rec.timestamp_s, rec.imu, chunk_samples=chunk_samples)
        except (ContractError, ChainInputError) as exc:  # data the model refuses
            raise fail(str(exc)) from exc
    if not cost.windows:  # nothing was timed: no figure (and no NaN latencies) to print
        raise fail(
            f"{path}: no window was made of its {len(rec)} samples ({rec.duration_s:.1f} s): "
            "nothing to time"
        )
    typer.echo(json.dumps(cost.to_dict()))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # python -m gaitedge.cli
    main()
