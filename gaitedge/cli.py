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


@app.command()
def version() -> None:
    """Print the gaitedge version."""
    typer.echo(__version__)


@app.command()
def inspect(
    recording: Annotated[Path, typer.Argument(help="Recording CSV.", exists=True, dir_okay=False)],
    rate_hz: RateOption = None,
) -> None:
    """Check a recording and summarise it: samples, duration, rate, gaps, labels."""
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
    """Run the offline signal chain over a recording and save its windows (npz)."""
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


def main() -> None:  # pragma: no cover - console entry point
    app()
