"""gaitedge's own CSV (``timestamp_s,acc_x..gyro_z[,label][,device_id]``): what ``listen
--record`` and ``gaitedge convert`` write. The reader is ``gaitedge.recording.read_recording``."""

from __future__ import annotations

from gaitedge.formats.base import Container, FormatError
from gaitedge.recording import AXES, CsvChunks, Recording, RecordingError, read_recording

NAME = "gaitedge"
TITLE = "gaitedge's own CSV (listen --record, gaitedge convert)"
NEEDS = "one CSV with acc_x..gyro_z columns (m/s², rad/s, or unit suffixes) and timestamp_s"


def detect(container: Container) -> str | None:
    if container.kind != "file":
        return None
    header = container.head(container.names[0], 1024).splitlines()[:1]
    # Names as written, or quoted (a spreadsheet or pandas' QUOTE_ALL writes "acc_x").
    names = [h.strip().strip('"').strip().lower() for h in header[0].split(",")] if header else []
    has = [any(n == a or n.startswith(a + "_") for n in names) for a in AXES]
    if all(has):
        return "header with acc_x..gyro_z"
    timed = any(n in ("timestamp_s", "timestamp_ms") for n in names)
    if all(has[:3]) and not any(has[3:]) and timed:  # an accelerometer alone: [N, 3]
        return "header with timestamp and acc_x..acc_z (no gyroscope)"
    return None


def read(container: Container, options) -> Recording:
    try:
        return read_recording(
            container.path, rate_hz=options.rate_hz, strict=options.strict, device=options.device
        )
    except FormatError:
        raise
    except RecordingError as exc:
        raise FormatError(str(exc)) from exc


def read_chunks(container: Container, options) -> CsvChunks:
    """The CSV block by block (``gaitedge.formats.open_chunks``); the header checked now."""
    try:
        return CsvChunks(
            container.path, options.rate_hz, strict=options.strict, device=options.device
        )
    except RecordingError as exc:
        raise FormatError(str(exc)) from exc
