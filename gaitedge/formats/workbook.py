"""A spreadsheet an app exported (``.xlsx``, or the older binary ``.xls``), read as the CSV
files it stands for: each sheet is a member ``<sheet name>.csv`` (its first row quoted, as the
apps quote their CSV headers, the numbers as Python writes them, exactly), so every format's
CSV reader reads it unchanged.

Why: phyphox offers Excel first in its export dialog. Android wrote ``.xls`` through Apache
POI's HSSF until 2025, then ``.xlsx`` through its own minimal writer (``XlsxWriter.java``:
inline strings, no cell references, a shorter column padded with ``"NaN"`` text); iOS writes
``.xlsx`` through libxlsxwriter (shared strings, cell references, a shorter column left
empty). One sheet per export set, plus ``Metadata Device`` and ``Metadata Time``.

``.xlsx`` is read here (a zip of XML: the workbook, its relationships, the shared strings and
each sheet, parsed row by row as it inflates: memory bounded by a row however long the sheet);
``.xls`` through ``xlrd`` (the package index's reader of the binary format; the workbook is
read whole, as that format's 65 536 rows per sheet allow).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from gaitedge.formats.base import Container, FormatError

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound file an .xls is stored in
_COLUMN = re.compile(r"^([A-Z]+)")


def kind_of(container: Container) -> str | None:
    """``"xlsx"`` or ``"xls"`` when the container is one workbook file, else None."""
    if container.kind == "zip" and "xl/workbook.xml" in container.names:
        return "xlsx"
    if container.kind == "file":
        try:
            with container.path.open("rb") as f:
                if f.read(8) == _OLE2:
                    return "xls"
        except OSError:
            return None
    return None


def _cell(value) -> str:
    """A cell as CSV text: a number exactly (``repr``), text quoted when it holds a comma, a
    quote or a line break, an empty cell empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_lines(rows: Iterator[list]) -> Iterator[bytes]:
    """Rows as CSV lines: the first row every cell quoted (a header, as the apps write it);
    a shorter row padded with empty cells (a cell a writer left out, as iOS leaves a shorter
    column's)."""
    width = None
    for row in rows:
        if width is None:
            width = len(row)
            cells = ['"' + str("" if v is None else v).replace('"', '""') + '"' for v in row]
        else:
            cells = [_cell(v) for v in row] + [""] * (width - len(row))
        yield (",".join(cells) + "\n").encode("utf-8")


class _LineStream(io.RawIOBase):
    """A read-only binary stream of generated lines (a sheet as CSV, made as it is read)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines, self._buf = lines, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            line = next(self._lines, None)
            if line is None:
                return 0
            self._buf = line
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class WorkbookContainer(Container):
    """A workbook's sheets as CSV members (``<sheet>.csv``), read by the formats' CSV readers.

    Raises:
        FormatError: a workbook that cannot be read (damaged, or without sheets).
    """

    def __init__(self, container: Container, kind: str) -> None:
        self.path = container.path
        self.kind = "workbook"
        self.workbook = kind
        self._zip = None
        self._inner = container
        self._xls = None
        if kind == "xlsx":
            self._zip = container._zip
            self._sheets = self._xlsx_sheets()
            self._strings = self._shared_strings()
        else:
            self._sheets = self._xls_sheets()
        if not self._sheets:
            raise FormatError(f"{self.path}: a workbook without sheets")
        self.names = [f"{name}.csv" for name in self._sheets]

    # --- the container --------------------------------------------------------------------

    def close(self) -> None:
        if self._xls is not None:
            self._xls.release_resources()
        self._inner.close()

    def where(self, name: str) -> str:
        return f"{self.path}:{name}"

    def open(self, name: str) -> IO[bytes]:
        if name not in self.names:
            raise FormatError(f"{self.where(name)}: no such sheet")
        rows = self._rows(name[: -len(".csv")])
        return io.BufferedReader(_LineStream(_csv_lines(rows)), buffer_size=1 << 16)

    def _rows(self, sheet: str) -> Iterator[list]:
        """A sheet's rows of cells (float, str or None), as stored."""
        return self._xlsx_rows(sheet) if self.workbook == "xlsx" else self._xls_rows(sheet)

    def local_path(self, name: str) -> Path | None:
        return None

    # --- xlsx -----------------------------------------------------------------------------

    def _xml(self, member: str) -> ElementTree.Element:
        try:
            return ElementTree.fromstring(self._zip.read(member))
        except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, OSError) as exc:
            raise FormatError(f"{self.path}:{member}: cannot read the workbook: {exc}") from exc

    def _xlsx_sheets(self) -> dict[str, str]:
        """Sheet name -> its member, in the workbook's order."""
        book = self._xml("xl/workbook.xml")
        targets = {}
        if "xl/_rels/workbook.xml.rels" in self._inner.names:
            for rel in self._xml("xl/_rels/workbook.xml.rels").iter(f"{_PKG}Relationship"):
                target = rel.get("Target", "")
                member = target.lstrip("/") if target.startswith("/") else "xl/" + target
                targets[rel.get("Id")] = posixpath.normpath(member)
        sheets = {}
        for i, sheet in enumerate(book.iter(f"{_MAIN}sheet"), start=1):
            member = targets.get(sheet.get(f"{_REL}id"), f"xl/worksheets/sheet{i}.xml")
            sheets[sheet.get("name", f"Sheet{i}")] = member
        return sheets

    def _shared_strings(self) -> list[str]:
        if "xl/sharedStrings.xml" not in self._inner.names:
            return []
        table = self._xml("xl/sharedStrings.xml")
        return ["".join(t.text or "" for t in si.iter(f"{_MAIN}t")) for si in table]

    def _xlsx_rows(self, sheet: str) -> Iterator[list]:
        """A sheet's rows, parsed as the member inflates; a cell is a float, a str or None.
        Cells are placed by their reference when they have one, else in order (phyphox's own
        writer gives none); a row with no number is text (the header, padding)."""
        member = self._sheets[sheet]
        where = f"{self.path}:{member}"
        try:
            stream = self._zip.open(member)
        except KeyError as exc:
            raise FormatError(f"{where}: the workbook names a sheet it does not hold") from exc
        expected = 1
        try:
            with stream:
                for _, row in ElementTree.iterparse(stream, events=("end",)):
                    if row.tag != f"{_MAIN}row":
                        continue
                    number = int(row.get("r", expected))
                    for _ in range(expected, number):  # rows left out: empty
                        yield []
                    expected = number + 1
                    yield self._xlsx_row(row, where)
                    row.clear()
        except ElementTree.ParseError as exc:
            raise FormatError(f"{where}: not a worksheet: {exc}") from exc

    def _xlsx_row(self, row: ElementTree.Element, where: str) -> list:
        out: list = []
        for c in row.iter(f"{_MAIN}c"):
            ref = _COLUMN.match(c.get("r", ""))
            if ref is not None:
                col = 0
                for ch in ref.group(1):
                    col = col * 26 + ord(ch) - 64
                out += [None] * (col - 1 - len(out))
            kind = c.get("t", "n")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{_MAIN}t"))
            else:
                v = c.find(f"{_MAIN}v")
                text = None if v is None else v.text
                if text is None:
                    value = None
                elif kind == "s":
                    try:
                        value = self._strings[int(text)]
                    except (ValueError, IndexError):
                        raise FormatError(f"{where}: a cell names shared string {text}") from None
                elif kind in ("str", "e"):
                    value = text
                elif kind == "b":
                    value = float(text)
                else:
                    try:
                        value = float(text)
                    except ValueError:
                        raise FormatError(f"{where}: a number cell holds {text!r}") from None
            out.append(value)
        return out

    # --- xls ------------------------------------------------------------------------------

    def _xls_sheets(self) -> dict[str, str]:
        try:
            import xlrd
        except ModuleNotFoundError as exc:  # a dependency of gaitedge: a broken install
            raise FormatError(f"{self.path}: reading .xls needs xlrd ({exc})") from exc
        try:
            data = self._inner.path.read_bytes()
            self._xls = xlrd.open_workbook(file_contents=data, on_demand=True)
        except (xlrd.XLRDError, OSError, AssertionError, IndexError, ValueError) as exc:
            raise FormatError(f"{self.path}: cannot read the .xls workbook: {exc}") from exc
        return {name: name for name in self._xls.sheet_names()}

    def _xls_rows(self, sheet: str) -> Iterator[list]:
        import xlrd

        book = self._xls
        s = book.sheet_by_name(sheet)
        for r in range(s.nrows):
            row = []
            for kind, value in zip(s.row_types(r), s.row_values(r), strict=True):
                if kind == xlrd.XL_CELL_NUMBER:
                    row.append(float(value))
                elif kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    row.append(None)
                else:
                    row.append(str(value))
            yield row
