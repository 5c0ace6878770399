"""Numeric CSV tables in the dialects apps write, parsed fast and refused with a line number.

Every text format reader parses its numbers here: delimiter (comma, semicolon, tab) and decimal
comma, quoted header cells, a trailing delimiter on every line (Shimmer), empty or ``NaN`` cells
(phyphox pads short columns), CRLF and a missing final newline. A cell that is not a number is
refused with its file, line and column; nothing is skipped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import numpy as np

from gaitedge.formats.base import FormatError

DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class Table:
    """A parsed table.

    Attributes:
        header: the column names as written (quotes removed, surrounding space stripped).
        data: [N, C] float64; empty cells are NaN.
        where: the file, for messages.
        first_line: the file's line number (1-based) of data row 0.
        delimiter: the delimiter found; decimal: ``.`` or ``,``.
    """

    header: list[str]
    data: np.ndarray
    where: str
    first_line: int
    delimiter: str
    decimal: str

    def index(self, name: str) -> int | None:
        """The column named ``name`` (case-insensitive), or None."""
        low = [h.lower() for h in self.header]
        return low.index(name.lower()) if name.lower() in low else None

    def column(self, name: str) -> np.ndarray:
        """One column by name; FormatError naming the header when it is absent."""
        i = self.index(name)
        if i is None:
            raise FormatError(f"{self.where}: no column {name!r} (header: {self.header})")
        return self.data[:, i]

    def columns(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """[N, len(names)] by name."""
        return np.stack([self.column(n) for n in names], axis=1)

    def line_of(self, row: int) -> int:
        return self.first_line + row


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a header line: the one of ``DELIMITERS`` it holds most of."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def split_header(line: str, delimiter: str) -> list[str]:
    cells = next(csv.reader([line], delimiter=delimiter))
    if cells and cells[-1].strip() == "":  # a trailing delimiter (Shimmer)
        cells = cells[:-1]
    return [c.strip() for c in cells]


_NUMBER = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")


def parse_table(
    text: str,
    where: str,
    *,
    delimiter: str | None = None,
    decimal: str | None = None,
    header_line: int = 0,
    skip_after_header: int = 0,
) -> Table:
    """Parse ``text`` (a whole file) into a :class:`Table`.

    Args:
        text: the file's text.
        where: the file's name, for messages.
        delimiter: forced delimiter; by default sniffed from the header line.
        decimal: ``.`` or ``,``; by default a comma when the delimiter is not a comma and the
            first data line has a comma in it.
        header_line: 0-based index of the header line (lines before it are skipped: ``sep=;``).
        skip_after_header: lines between the header and the data (a units row).

    Raises:
        FormatError: no header, a row with a different number of cells, a cell that is not a
            number (file, line and column named).
    """
    lines = text.splitlines()
    if len(lines) <= header_line or not lines[header_line].strip():
        raise FormatError(f"{where}: empty file, expected a header line")
    delimiter = delimiter or sniff_delimiter(lines[header_line])
    header = split_header(lines[header_line], delimiter)
    first = header_line + 1 + skip_after_header
    body = lines[first:]
    while body and not body[-1].strip():
        body.pop()
    if decimal is None:
        decimal = "," if delimiter != "," and body and "," in body[0] else "."
    data = _parse_body(body, len(header), delimiter, decimal)
    if data is None:
        data = _parse_careful(body, len(header), delimiter, decimal, where, first + 1)
    return Table(header, data, where, first + 1, delimiter, decimal)


def _parse_body(body: list[str], n: int, delimiter: str, decimal: str) -> np.ndarray | None:
    """The fast path: one C-level parse of the whole body; None when anything is off (the
    careful path then finds and names the line)."""
    if not body:
        return np.empty((0, n))
    text = "\n".join(body)
    if decimal == ",":
        text = text.replace(",", ".")
    if delimiter != ",":
        text = text.replace(delimiter, ",")
    if text.endswith(","):  # trailing delimiter on every line
        text = text.replace(",\n", "\n")[:-1]
    if '"' in text:
        text = text.replace('"', "")
    try:
        flat = np.fromstring(text.replace("\n", ","), sep=",")
    except (ValueError, DeprecationWarning):
        return None
    if len(flat) != len(body) * n:
        return None
    return flat.reshape(len(body), n)


def _parse_careful(
    body: list[str], n: int, delimiter: str, decimal: str, where: str, line0: int
) -> np.ndarray:
    out = np.empty((len(body), n))
    for r, line in enumerate(body):
        cells = next(csv.reader([line], delimiter=delimiter)) if line else []
        if len(cells) == n + 1 and cells[-1].strip() == "":
            cells = cells[:-1]
        if len(cells) != n:
            raise FormatError(f"{where}:{line0 + r}: expected {n} fields, got {len(cells)}")
        for c, cell in enumerate(cells):
            cell = cell.strip()
            if cell == "" or cell.lower() == "nan":
                out[r, c] = np.nan
                continue
            if not _NUMBER.match(cell) or (decimal == "." and "," in cell):
                raise FormatError(f"{where}:{line0 + r}: column {c + 1} is not a number: {cell!r}")
            out[r, c] = float(cell.replace(",", ".")) if decimal == "," else float(cell)
    return out
