"""phyphox (RWTH Aachen) as it exports a simple experiment: one CSV per set, ``meta/``.

Written the way ``DataExport.CsvFormat`` (Android) and ``ExperimentExportSet`` /
``ExperimentExport`` (iOS) write them (``vendor-formats.md`` §A2):

* Android: sets ``Accelerometer`` and ``Gyroscope`` with ``"Acceleration x (m/s^2)"``,
  ``"Gyroscope x (rad/s)"`` headers; numbers through ``DecimalFormat("0.000000000E0")`` with the
  dialect's decimal separator; a shorter column padded with ``NaN``; every row ends in a newline.
  Accelerometer and gyroscope at the fastest rate, ~408 and ~403 Hz, on their own stamps.
* iOS: ``"X (m/s^2)"`` / ``"X (rad/s)"`` headers (``"Gravity X (m/s^2)"``); 10 significant
  digits, scientific; a shorter column padded with ``""``; no final newline. CoreMotion's g
  times -9.81 (so m/s² 9.81/9.80665 large, Android's sign); the accelerometer at ~100.7 Hz, the
  device-motion sensors (gyroscope, linear acceleration, gravity) at ~100.3 Hz on shared stamps;
  the first accelerometer time slightly negative.
* Both: the zip ``"<title> yyyy-MM-dd HH-mm-ss.zip"`` holds ``<set>.csv`` and ``meta/device.csv``,
  ``meta/time.csv`` (``START`` at experiment time 0 = :data:`START_UNIX_S`, ``PAUSE`` at the
  end); the folder variant is that zip unzipped. Every export here was taken while the
  experiment ran: the gyroscope's x and y columns hold one value more than its time and z (the
  buffers are appended x, y, z, t), so its last row is padded.

A canonical instant ``t`` of the recording is experiment time ``t - t[0] - LEAD_S[platform]``,
and Unix time ``START_UNIX_S`` plus that.
"""

from __future__ import annotations

import csv
import functools
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, gravity_split, resample
from gaitedge.recording import Recording

# The experiment's START, Unix seconds (a whole millisecond: Android writes it with 3 decimals).
START_UNIX_S = 1_718_000_000.125
_TZ = timezone(timedelta(hours=2))
# Experiment time 0 is this long after the recording's first sample (iOS: so that the
# accelerometer's first stamp is negative, as in real exports).
LEAD_S = {"android": 0.0, "ios": 0.004}
IOS_G_M_S2 = 9.81  # ExperimentSensorInput.swift: ``private let kG = -9.81``

# (rate Hz, first stamp after the recording's first sample s) per sensor clock
_CLOCKS = {
    "android": {"acc": (408.4, 0.0284), "gyro": (403.2, 0.1438)},
    "ios": {"acc": (100.7, 0.0014), "motion": (100.3, 0.0196)},
}
_JITTER_S = {"android": 0.0001, "ios": 0.0002}
_HEADERS = {
    ("android", "acc"): (
        "Acceleration x (m/s^2)", "Acceleration y (m/s^2)", "Acceleration z (m/s^2)",
    ),
    ("android", "gyro"): ("Gyroscope x (rad/s)", "Gyroscope y (rad/s)", "Gyroscope z (rad/s)"),
    ("ios", "acc"): ("X (m/s^2)", "Y (m/s^2)", "Z (m/s^2)"),
    ("ios", "linear"): ("X (m/s^2)", "Y (m/s^2)", "Z (m/s^2)"),
    ("ios", "gravity"): ("Gravity X (m/s^2)", "Gravity Y (m/s^2)", "Gravity Z (m/s^2)"),
    ("ios", "gyro"): ("X (rad/s)", "Y (rad/s)", "Z (rad/s)"),
}  # fmt: skip
# The app's five CSV choices: (delimiter, decimal separator).
DIALECTS = {
    "comma": (",", "."),
    "tab": ("\t", "."),
    "semicolon": (";", "."),
    "tab-decimal-comma": ("\t", ","),
    "semicolon-decimal-comma": (";", ","),
}


def _short_exponents(text: str, values: np.ndarray) -> str:
    """Python's ``1.5E+01``, ``1.5E-02`` as Java and iOS write them: ``1.5E1``, ``1.5E-2``
    (only the exponents ``values`` can print are replaced: one pass over the text each)."""
    mag = np.abs(values[np.isfinite(values) & (values != 0)])
    exps = {0}
    if len(mag):
        e = np.floor(np.log10(mag)).astype(np.int64)
        exps |= set(np.unique(np.concatenate([e, e + 1])).tolist())  # + 1: rounding up
    for e in sorted(exps):
        text = text.replace(f"E{e:+03d}", f"E{e}")
    return text


def _numbers(values: np.ndarray, digits: int, decimal: str) -> list[str]:
    """Scientific with ``digits`` significant digits, exponent without sign or zeros
    (``3.674579167E-2``, ``0.000000000E0``): Java's ``DecimalFormat("0.000000000E0")`` and
    iOS's ``NumberFormatter(.scientific)`` alike."""
    return _rows(np.asarray(values, np.float64).reshape(-1, 1), digits, "\t", decimal).split("\n")


def _rows(table: np.ndarray, digits: int, delimiter: str, decimal: str) -> str:
    """[N, C] numbers as N lines (no final newline) of C cells, formatted as :func:`_numbers`."""
    n, c = table.shape
    if n == 0:
        return ""
    line = delimiter.join([f"%.{digits - 1}E"] * c)
    flat = table.ravel()
    text = _short_exponents("\n".join([line] * n) % tuple(flat.tolist()), flat)
    return text.replace(".", decimal) if decimal != "." else text


def _set_csv(
    platform: str,
    header: tuple[str, ...],
    columns: list[np.ndarray],
    delimiter: str,
    decimal: str,
) -> str:
    """One set as the app writes it: quoted header, the longest column deciding the rows,
    shorter ones padded (Android ``NaN``, iOS ``""``), Android's final newline."""
    pad = "NaN" if platform == "android" else '""'
    rows, full = max(len(c) for c in columns), min(len(c) for c in columns)
    lines = [delimiter.join(f'"{h}"' for h in header)]
    body = _rows(np.stack([c[:full] for c in columns], axis=1), 10, delimiter, decimal)
    lines += [body] if body else []
    for r in range(full, rows):  # the padded rows at the end
        lines.append(
            delimiter.join(_numbers([c[r]], 10, decimal)[0] if r < len(c) else pad for c in columns)
        )
    return "\n".join(lines) + ("\n" if platform == "android" else "")


def _meta(platform: str, delimiter: str, decimal: str, end_s: float) -> dict[str, str]:
    """``meta/device.csv`` and ``meta/time.csv`` (START at 0, PAUSE at ``end_s``)."""
    if platform == "android":
        device = {
            "version": "1.2.0", "build": "1020009", "fileFormat": "1.19",
            "deviceModel": "HD1903", "deviceBrand": "OnePlus", "deviceBoard": "msmnile",
            "deviceManufacturer": "OnePlus", "deviceBaseOS": "", "deviceCodename": "OnePlus7T",
            "deviceRelease": "11",
        }  # fmt: skip
    else:
        device = {
            "version": "1.1.16", "build": "11317", "fileFormat": "1.18",
            "deviceModel": "iPhone13,4", "deviceBrand": "Apple", "deviceBoard": "",
            "deviceManufacturer": "", "deviceBaseOS": "", "deviceCodename": "",
            "deviceRelease": "18.5", "depthFrontSensor": "1", "depthFrontResolution": "",
            "depthFrontRate": "", "depthBackSensor": "1", "depthBackResolution": "",
            "depthBackRate": "",
        }  # fmt: skip
    d = delimiter
    device_csv = f'"property"{d}"value"\n' + "".join(f'"{k}"{d}"{v}"\n' for k, v in device.items())
    time_csv = f'"event"{d}"experiment time"{d}"system time"{d}"system time text"\n'
    for event, exp in (("START", 0.0), ("PAUSE", end_s)):
        unix = START_UNIX_S + exp
        when = datetime.fromtimestamp(unix, _TZ)
        text = when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d} UTC+02:00"
        if platform == "android":  # DecimalFormat("0.000000000E0"), ("############0.000")
            exp_s, unix_s = _numbers([exp], 10, decimal)[0], f"{unix:.3f}".replace(".", decimal)
        else:  # NumberFormatter(.scientific, 16 significant digits)
            exp_s, unix_s = _numbers([exp, unix], 16, decimal)
        time_csv += f'"{event}"{d}{exp_s}{d}{unix_s}{d}"{text}"\n'
    return {"meta/device.csv": device_csv, "meta/time.csv": time_csv}


def _sets(recording: Recording, platform: str, linear_gravity: bool) -> dict[str, tuple]:
    """Set name -> (header, [time, x, y, z] columns) on the app's own clocks."""
    t = np.asarray(recording.timestamp_s, np.float64)
    acc, gyro = recording.imu[:, :3], recording.imu[:, 3:]
    t0 = t[0] + LEAD_S[platform]
    jitter = _JITTER_S[platform]
    out = {}
    if platform == "android":
        rate, offset = _CLOCKS["android"]["acc"]
        ta, xa = resample(t, acc, rate, offset_s=offset, jitter_s=jitter, seed=1)
        rate, offset = _CLOCKS["android"]["gyro"]
        tg, xg = resample(t, gyro, rate, offset_s=offset, jitter_s=jitter, seed=2)
        out["Accelerometer"] = ("acc", ta, xa)
        out["Gyroscope"] = ("gyro", tg, xg)
    else:
        scale = IOS_G_M_S2 / G  # what phyphox writes: CoreMotion's g (canonical / G) x 9.81
        rate, offset = _CLOCKS["ios"]["motion"]
        tm, xg = resample(t, gyro, rate, offset_s=offset, jitter_s=jitter, seed=2)
        if linear_gravity:
            linear, gravity = gravity_split(t, acc)
            _, xl = resample(t, linear, rate, offset_s=offset, jitter_s=jitter, seed=2)
            _, xgr = resample(t, gravity, rate, offset_s=offset, jitter_s=jitter, seed=2)
            out["Gravity"] = ("gravity", tm, xgr * scale)
            out["Gyroscope"] = ("gyro", tm, xg)
            out["Linear Accelerometer"] = ("linear", tm, xl * scale)
        else:
            rate, offset = _CLOCKS["ios"]["acc"]
            ta, xa = resample(t, acc, rate, offset_s=offset, jitter_s=jitter, seed=1)
            out["Accelerometer"] = ("acc", ta, xa * scale)
            out["Gyroscope"] = ("gyro", tm, xg)
    sets = {}
    for name, (sensor, ts, xs) in out.items():
        columns = [ts - t0, xs[:, 0], xs[:, 1], xs[:, 2]]
        if sensor == "gyro":  # exported while running: x, y one value ahead of t and z
            columns = [columns[0][:-1], columns[1], columns[2], columns[3][:-1]]
        sets[name] = (("Time (s)", *_HEADERS[(platform, sensor)]), columns)
    return sets


def _render(
    recording: Recording,
    out_dir: Path,
    *,
    platform: str,
    dialect: str,
    container: str,
    linear_gravity: bool = False,
) -> Path:
    delimiter, decimal = DIALECTS[dialect]
    sets = _sets(recording, platform, linear_gravity)
    files = {
        f"{name}.csv": _set_csv(platform, header, columns, delimiter, decimal)
        for name, (header, columns) in sets.items()
    }
    end_s = max(float(np.nanmax(c[0])) for _, c in sets.values()) + 0.05
    files |= _meta(platform, delimiter, decimal, end_s)
    stamp = datetime.fromtimestamp(START_UNIX_S, _TZ).strftime("%Y-%m-%d %H-%M-%S")
    kind = "linear-gravity" if linear_gravity else dialect
    title = f"Gait {platform} {kind} {stamp}"
    if container == "zip":
        path = out_dir / f"{title}.zip"
        # deflated as the apps do; level 1: the same bytes unzipped, 4x faster to write
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, text in files.items():
                zf.writestr(name, text.encode("utf-8"))
        return path
    path = out_dir / title
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(text.encode("utf-8"))
    return path


# --- the Excel export -----------------------------------------------------------------------


def _java_double(v: float) -> str:
    """Java's ``Double.toString``, which phyphox's own xlsx writer puts in ``<v>``: decimal from
    1e-3 up to 1e7 (``0.0367``, ``12.0``), else ``1.5E-4`` / ``1.2E7``."""
    if v == 0 or 1e-3 <= abs(v) < 1e7:
        text = repr(float(v))
        return text if "e" not in text else f"{float(v):.17f}".rstrip("0")
    mantissa, exp = f"{v:.16e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}0E{int(exp)}" if mantissa.endswith(".") else f"{mantissa}E{int(exp)}"


def _excel_rows(platform: str, sets: dict, end_s: float) -> dict[str, list[list]]:
    """Sheet name -> rows (header first) of str / float / None cells, as the app fills its
    workbook: a set per sheet (a shorter column: Android the text ``NaN``, iOS no cell), then
    ``Metadata Device`` and ``Metadata Time`` (numbers as numbers)."""
    sheets: dict[str, list[list]] = {}
    for name, (header, columns) in sets.items():
        rows: list[list] = [list(header)]
        for r in range(max(len(c) for c in columns)):
            pad = "NaN" if platform == "android" else None
            rows.append([float(c[r]) if r < len(c) else pad for c in columns])
        sheets[name] = rows
    meta = _meta(platform, ",", ".", end_s)
    device = list(csv.reader(meta["meta/device.csv"].splitlines()))
    sheets["Metadata Device"] = device  # property, value: text
    time = list(csv.reader(meta["meta/time.csv"].splitlines()))
    sheets["Metadata Time"] = time[:1] + [[e, float(x), float(u), w] for e, x, u, w in time[1:]]
    return sheets


def _write_phyphox_xlsx(path: Path, sheets: dict[str, list[list]]) -> None:
    """What phyphox's own ``XlsxWriter.java`` (Android, since 2025) writes: a zip of XML with
    inline strings (the header bold: style 1), no cell or row references, numbers as
    ``Double.toString``; the content types, the workbook, its relationships and the styles
    written last (the sheets stream first)."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"

    def text(value: str, bold: bool) -> str:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        style = ' s="1"' if bold else ""
        return f'<c t="inlineStr"{style}><is><t xml:space="preserve">{value}</t></is></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(
            "_rels/.rels",
            f'{head}<Relationships xmlns="{pkg}"><Relationship Id="rId1" Type="{rel}/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        for i, rows in enumerate(sheets.values(), start=1):
            body = []
            for r, row in enumerate(rows):
                cells = [
                    text(v, r == 0) if isinstance(v, str) else f"<c><v>{_java_double(v)}</v></c>"
                    for v in row
                ]
                body.append("<row>" + "".join(cells) + "</row>")
            zf.writestr(
                f"xl/worksheets/sheet{i}.xml",
                f"{head}<worksheet {ns}><sheetData>{''.join(body)}</sheetData></worksheet>",
            )
        names = "".join(
            f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>'
            for i, n in enumerate(sheets, start=1)
        )
        zf.writestr(
            "xl/workbook.xml",
            f'{head}<workbook {ns} xmlns:r="{rel}"><sheets>{names}</sheets></workbook>',
        )
        links = "".join(
            f'<Relationship Id="rId{i}" Type="{rel}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(sheets) + 1)
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{head}<Relationships xmlns="{pkg}">{links}<Relationship Id="rId{len(sheets) + 1}"'
            f' Type="{rel}/styles" Target="styles.xml"/></Relationships>',
        )
        types = "http://schemas.openxmlformats.org/package/2006/content-types"
        office = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        parts = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{office}.worksheet'
            '+xml"/>'
            for i in range(1, len(sheets) + 1)
        )
        zf.writestr(
            "[Content_Types].xml",
            f'{head}<Types xmlns="{types}"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            f'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            f'"{office}.sheet.main+xml"/>{parts}<Override PartName="/xl/styles.xml" ContentType='
            f'"{office}.styles+xml"/></Types>',
        )
        fonts = (
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/>'
            '<sz val="11"/><name val="Calibri"/></font></fonts>'
        )
        xfs = (
            '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
            "</cellXfs>"
        )
        rest = (
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
            'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/>'
            '<top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf '
            'numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        )
        named = (
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        )
        zf.writestr(
            "xl/styles.xml", f"{head}<styleSheet {ns}>{fonts}{rest}{xfs}{named}</styleSheet>"
        )


def _write_libxlsxwriter(path: Path, sheets: dict[str, list[list]]) -> None:
    """What iOS writes through libxlsxwriter: written by its Python original, XlsxWriter (the
    same author and XML: shared strings, cell references, the header bold, a cell not written
    left out)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    bold = book.add_format({"bold": True})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value, bold if r == 0 else None)
    book.close()


def _write_hssf_xls(path: Path, sheets: dict[str, list[list]]) -> None:
    """What Android wrote through Apache POI's HSSF before 2025 (``DataExport.ExcelFormat`` of
    that time): a binary ``.xls`` (BIFF8, written by xlwt), as many rows as a set's first
    (time) column holds, ``NaN`` text for a shorter column, and the device sheet's header cell
    misspelled ``proeprty`` (vendor-formats.md §A2). A set past the format's 65 536 rows made
    the app's export fail (POI refuses the row; the workbook was never written): refused."""
    import xlwt

    book = xlwt.Workbook()
    bold = xlwt.easyxf("font: bold on")
    for name, rows in sheets.items():
        if not name.startswith("Metadata "):
            rows = rows[: 1 + sum(1 for row in rows[1:] if not isinstance(row[0], str))]
        if len(rows) > 65_536:
            raise ValueError(f"{name}: {len(rows)} rows; phyphox's .xls export fails past 65536")
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if r == 0 and name == "Metadata Device" and value == "property":
                    value = "proeprty"
                if value is not None:
                    sheet.write(r, c, value, bold if r == 0 else xlwt.Style.default_style)
    book.save(str(path))


_EXCEL_WRITERS = {
    "xlsx": _write_phyphox_xlsx,
    "libxlsxwriter": _write_libxlsxwriter,
    "xls": _write_hssf_xls,
}


def _render_excel(recording: Recording, out_dir: Path, *, platform: str, workbook: str) -> Path:
    sets = _sets(recording, platform, linear_gravity=False)
    end_s = max(float(np.nanmax(c[0])) for _, c in sets.values()) + 0.05
    stamp = datetime.fromtimestamp(START_UNIX_S, _TZ).strftime("%Y-%m-%d %H-%M-%S")
    path = out_dir / f"Gait {platform} {stamp}.{'xls' if workbook == 'xls' else 'xlsx'}"
    _EXCEL_WRITERS[workbook](path, _excel_rows(platform, sets, end_s))
    return path


def _variant(**kw) -> Callable[[Recording, Path], Path]:
    return lambda recording, out_dir: _render(recording, out_dir, **kw)


VARIANTS: dict[str, Callable[[Recording, Path], Path]] = {
    f"{platform}-{dialect}-{container}": _variant(
        platform=platform, dialect=dialect, container=container
    )
    for platform in ("android", "ios")
    for dialect in DIALECTS
    for container in ("zip", "folder")
}
VARIANTS["ios-linear-gravity-zip"] = _variant(
    platform="ios", dialect="comma", container="zip", linear_gravity=True
)
# The Excel export (the dialog's first choice): Android's own xlsx writer (2025 on) and iOS's
# libxlsxwriter. Android's HSSF .xls of before is :func:`write_xls` (not a variant: the bench's
# recordings run past the 65 536 rows at which that export failed).
VARIANTS["android-xlsx"] = functools.partial(_render_excel, platform="android", workbook="xlsx")
VARIANTS["ios-xlsx"] = functools.partial(_render_excel, platform="ios", workbook="libxlsxwriter")
write_xls = functools.partial(_render_excel, platform="android", workbook="xls")
