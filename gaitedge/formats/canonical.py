"""gaitedge's own CSV (``timestamp_s,acc_x..gyro_z[,label][,device_id]``): what ``listen
--record`` and ``gaitedge convert`` write. The reader is ``gaitedge.recording.read_recording``."""

from __future__ import annotations

from gaitedge.formats.base import Container, FormatError
from gaitedge.recording import (
    AXES,
    CsvChunks,
    Recording,
    RecordingError,
    read_recording,
    recording_from_text,
)

NAME = "gaitedge"
TITLE = "gaitedge's own CSV (listen --record, gaitedge convert)"
NEEDS = (
    "one CSV with acc_x..gyro_z columns (m/s², rad/s, or unit suffixes) and timestamp_s; "
    "comma-, semicolon- (decimal comma) or tab-separated"
)


# A spreadsheet saves the file again in its locale's list separator: a semicolon (with a decimal
# comma) or a tab.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _header(container: Container) -> tuple[list[str], str]:
    """The header's names and its delimiter (a comma unless the line has none)."""
    header = container.head(container.names[0], 1024).splitlines()[:1]
    line = header[0] if header else ""
    delimiter = next((d for d in DELIMITERS if d in line), ",")
    # Names as written, or quoted (a spreadsheet or pandas' QUOTE_ALL writes "acc_x").
    names = [h.strip().strip('"').strip().lower() for h in line.split(delimiter)] if line else []
    return names, delimiter


def detect(container: Container) -> str | None:
    if container.kind != "file":
        return None
    names, delimiter = _header(container)
    saved = f" ({DELIMITERS[delimiter]}-separated, as a spreadsheet saves it)"
    saved = "" if delimiter == "," else saved
    has = [any(n == a or n.startswith(a + "_") for n in names) for a in AXES]
    if all(has):
        return "header with acc_x..gyro_z" + saved
    timed = any(n in ("timestamp_s", "timestamp_ms") for n in names)
    if all(has[:3]) and not any(has[3:]) and timed:  # an accelerometer alone: [N, 3]
        return "header with timestamp and acc_x..acc_z (no gyroscope)" + saved
    return None


def read(container: Container, options) -> Recording:
    kwargs = {"strict": options.strict, "device": options.device}
    try:
        _, delimiter = _header(container)
        if delimiter == ",":
            return read_recording(container.path, options.rate_hz, **kwargs)
        text = _as_commas(container, delimiter)
        return recording_from_text(text, str(container.path), options.rate_hz, **kwargs)
    except FormatError:
        raise
    except RecordingError as exc:
        raise FormatError(str(exc)) from exc


def _as_commas(container: Container, delimiter: str) -> str:
    """A semicolon- or tab-separated file's text in the comma dialect: a decimal comma (a
    comma anywhere in it) becomes a point, the delimiter a comma (lines keep their numbers)."""
    try:
        text = container.path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{container.path}: cannot read: {exc}") from exc
    return text.replace(",", ".").replace(delimiter, ",")


def read_chunks(container: Container, options) -> CsvChunks | None:
    """The CSV block by block (``gaitedge.formats.open_chunks``); the header checked now. A
    spreadsheet's semicolon- or tab-separated copy is read whole (:func:`read`)."""
    if _header(container)[1] != ",":
        return None
    try:
        return CsvChunks(
            container.path, options.rate_hz, strict=options.strict, device=options.device
        )
    except RecordingError as exc:
        raise FormatError(str(exc)) from exc
