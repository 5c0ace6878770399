"""Any other GATT layout, from a small JSON file: DIY boards (Nano 33 BLE Sense, XIAO nRF52840
Sense, ESP32) and the Nordic UART Service carrying CSV text.

A layout names the service, each notifying characteristic with its struct layout (Python
``struct`` format) or ``"text": "csv"``, the field each value is (``acc_x`` .. ``gyro_z``, ``_``
to skip), an optional ``scale`` per characteristic, the units (``acc_unit``, ``gyro_unit``), an
axis map (``axes``, as ``--mount`` writes it: ``-y,x,z``), the nominal ``rate_hz``, and
optional ``writes`` (``[{"uuid", "hex"}]``) that start streaming. A notification may carry
several samples (a payload of several structs). Acceleration and rotation rate on two
characteristics are paired in arrival order. No time is sent: the host clock and the nominal
rate place the samples. Shipped layouts (``layouts/*.json``) are detected by their service.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.devices.base import DropReason, GattLink, Pairer, Profile, Samples
from gaitedge.units import accel_to_m_s2, gyro_to_rad_s, parse_accel_unit, parse_gyro_unit

NAME = "gatt"
TITLE = "any GATT layout from a JSON file (shipped: Arduino Science Journal, Nordic UART CSV)"
NEEDS = "a layout file (--gatt-layout) naming service, characteristics, struct, units and rate"

LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"
FIELDS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
SKIP = "_"


class LayoutError(ValueError):
    """A layout file that does not say what it must."""


@dataclass(frozen=True)
class CharLayout:
    uuid: str
    fields: tuple[str, ...]
    struct_format: str | None  # None: CSV text lines
    scale: float

    @property
    def sensors(self) -> set[str]:
        return {f[:-2] for f in self.fields if f != SKIP}


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    service: str
    rate_hz: float
    acc_unit: str
    gyro_unit: str
    axes: str
    chars: tuple[CharLayout, ...]
    writes: tuple[tuple[str, bytes], ...] = ()


def _char(spec: dict, where: str) -> CharLayout:
    try:
        uuid, fields = str(spec["uuid"]).lower(), tuple(spec["fields"])
    except (KeyError, TypeError) as exc:
        raise LayoutError(f"{where}: each characteristic needs uuid and fields") from exc
    unknown = [f for f in fields if f not in (*FIELDS, SKIP)]
    if unknown:
        raise LayoutError(f"{where}: unknown fields {unknown}; use {', '.join(FIELDS)} or _")
    fmt = spec.get("struct")
    if fmt is None and spec.get("text") != "csv":
        raise LayoutError(f'{where}: characteristic {uuid} needs a struct or "text": "csv"')
    if fmt is not None:
        try:
            count = len(struct.unpack(fmt, bytes(struct.calcsize(fmt))))
        except struct.error as exc:
            raise LayoutError(f"{where}: bad struct {fmt!r}: {exc}") from exc
        if count != len(fields):
            raise LayoutError(f"{where}: struct {fmt!r} holds {count} values, {len(fields)} named")
    return CharLayout(uuid, fields, fmt, float(spec.get("scale", 1.0)))


def load_layout(spec: str | Path) -> Layout:
    """A layout from a JSON file or a shipped layout's name.

    Raises:
        LayoutError: missing, unreadable or incomplete, with what is wrong.
    """
    path = Path(spec)
    if not path.exists():
        shipped = {lay.name: p for p, lay in _shipped().items()}
        if str(spec) not in shipped:
            known = ", ".join(sorted(shipped))
            raise LayoutError(f"GATT layout {spec}: no such file or shipped layout ({known})")
        path = shipped[str(spec)]
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LayoutError(f"GATT layout {path}: {exc}") from exc
    return _parse(data, str(path))


def _parse(data: dict, where: str) -> Layout:
    try:
        chars = tuple(_char(c, where) for c in data["characteristics"])
        layout = Layout(
            name=str(data.get("name", Path(where).stem)),
            title=str(data.get("title", "")),
            service=str(data["service"]).lower(),
            rate_hz=float(data["rate_hz"]),
            acc_unit=parse_accel_unit(data.get("acc_unit", "g"), where).value,
            gyro_unit=parse_gyro_unit(data.get("gyro_unit", "deg/s"), where).value,
            axes=str(data.get("axes", "x,y,z")),
            chars=chars,
            writes=tuple(
                (w["uuid"].lower(), bytes.fromhex(w["hex"])) for w in data.get("writes", [])
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"{where}: {exc!r} (needs service, rate_hz, characteristics)") from exc
    named = [f for c in chars for f in c.fields if f != SKIP]
    if sorted(named) != sorted(FIELDS):
        raise LayoutError(f"{where}: the fields must name each of {', '.join(FIELDS)} once")
    if not layout.rate_hz > 0:
        raise LayoutError(f"{where}: rate_hz must be positive")
    return layout


def _shipped() -> dict[Path, Layout]:
    return {
        p: _parse(json.loads(p.read_text()), str(p)) for p in sorted(LAYOUTS_DIR.glob("*.json"))
    }


SERVICES = tuple(lay.service for lay in _shipped().values())
NAME_PREFIXES: tuple[str, ...] = ()


class GattProfile(Profile):
    """A profile read from a :class:`Layout` (chosen on connect among the shipped ones when
    no layout is given)."""

    name = NAME

    def __init__(self, layout: str | Path | Layout | None = None) -> None:
        super().__init__()
        self.layout: Layout | None = None
        if layout is not None:
            self._use(layout if isinstance(layout, Layout) else load_layout(layout))
        else:
            self.services = SERVICES
        self.pairer = Pairer()
        self._text: dict[str, str] = {}
        self._in_step: set[str] = set()  # text characteristics past their first newline

    def _use(self, layout: Layout) -> None:
        from gaitedge.mounting import parse_axis_map

        self.layout = layout
        self.services = (layout.service,)
        self.rate_hz = layout.rate_hz
        self.rotation = parse_axis_map(layout.axes)  # [3, 3] body = rotation @ sensor
        self.model = layout.name

    def reset(self) -> None:
        self.pairer.reset()
        self._text, self._in_step = {}, set()

    async def start(self, link: GattLink) -> None:
        if self.layout is None:
            present = link.services()
            self._use(next(lay for lay in _shipped().values() if lay.service in present))
        for uuid, data in self.layout.writes:
            await link.write(uuid, data)
        for char in self.layout.chars:
            await link.subscribe(char.uuid)

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        char = next((c for c in self.layout.chars if c.uuid == uuid), None)
        if char is None:
            self.stats.drop(DropReason.UNKNOWN, uuid)
            return []
        rows = self._rows(char, payload)
        if rows is None or not len(rows):
            return []
        values = {f: rows[:, i] * char.scale for i, f in enumerate(char.fields) if f != SKIP}
        acc = gyro = None
        if "acc" in char.sensors:
            acc = np.column_stack([values[f"acc_{a}"] for a in "xyz"])
            acc = accel_to_m_s2(acc, self.layout.acc_unit) @ self.rotation.T
        if "gyro" in char.sensors:
            gyro = np.column_stack([values[f"gyro_{a}"] for a in "xyz"])
            gyro = gyro_to_rad_s(gyro, self.layout.gyro_unit) @ self.rotation.T
        if acc is not None and gyro is not None:
            return [Samples(np.hstack([acc, gyro]))]
        pairs = self.pairer.add(acc=acc, gyro=gyro)
        lost, self.pairer.lost = self.pairer.lost, 0
        return [Samples(pairs, None, lost)] if len(pairs) else []

    def _rows(self, char: CharLayout, payload: bytes) -> np.ndarray | None:
        if char.struct_format is not None:
            size = struct.calcsize(char.struct_format)
            if not payload or len(payload) % size:
                self.stats.drop(DropReason.MALFORMED, f"{len(payload)} bytes, structs of {size}")
                return None
            rows = np.array(list(struct.iter_unpack(char.struct_format, payload)), dtype=float)
            finite = np.isfinite(rows).all(axis=1)
            for _ in range(int((~finite).sum())):  # a float field sent as NaN or inf
                self.stats.drop(DropReason.MALFORMED, "a non-finite value")
            return rows if finite.all() else rows[finite]
        text = self._text.get(char.uuid, "") + payload.decode("ascii", errors="replace")
        if char.uuid not in self._in_step:
            # Subscribed (or reconnected) mid-stream: what comes before the first newline may
            # be the tail of a line (its first cells cut: a wrong number, not a refusal), so
            # it is never used; lines count from the first newline on.
            cut = text.find("\n")
            if cut < 0:
                self._text[char.uuid] = ""
                return None
            text = text[cut + 1 :]
            self._in_step.add(char.uuid)
        *lines, rest = text.replace("\r", "").split("\n")
        self._text[char.uuid] = rest[-256:]  # a line never ends: keep it bounded
        rows = []
        for line in filter(None, (x.strip() for x in lines)):
            try:
                row = [float(v) for v in line.split(",")]
            except ValueError:
                row = []
            if len(row) != len(char.fields) or not all(map(math.isfinite, row)):  # nan, inf
                self.stats.drop(DropReason.MALFORMED, f"CSV line {line[:40]!r}")
                continue
            rows.append(row)
        return np.array(rows, dtype=float).reshape(-1, len(char.fields))


def profile(layout: str | Path | None = None, **_options) -> GattProfile:
    return GattProfile(layout)
