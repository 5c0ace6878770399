"""Numeric CSV tables in the dialects apps write, parsed fast and refused with a line number.

Every text format reader parses its numbers here: delimiter (comma, semicolon, tab) and decimal
comma, quoted header cells, a trailing delimiter on every line (Shimmer), empty or ``NaN`` cells
(phyphox pads short columns), CRLF and a missing final newline. A cell that is not a number is
refused with its file, line and column; nothing is skipped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from gaitedge.formats.base import FormatError

DELIMITERS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, as Excel's "CSV UTF-8" starts a file


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

    def check_forward(
        self,
        t_s: np.ndarray,
        back_s: float = 0.5,
        before: float | None = None,
        *,
        unit_s: float = 1.0,
        why: str = "rows out of order, or two recordings in one file",
    ) -> None:
        """Refuse a step back in time of more than ``back_s`` (``why``: what it may be);
        smaller ones are jitter the join's repair absorbs. ``before``: the previous block's
        last time, when this table is a later block of a file. ``unit_s``: the stamps' unit
        in seconds (1e-9: epoch ns, judged as they are, no copy in seconds)."""
        found = step_back(t_s, back_s / unit_s, before)
        if found is not None:
            i, previous = found
            raise FormatError(
                f"{self.where}:{self.line_of(i)}: time goes back "
                f"{(previous - t_s[i]) * unit_s:.3f} s ({why})"
            )


def step_back(
    t_s: np.ndarray, back_s: float, before: float | None = None
) -> tuple[int, float] | None:
    """The first row of ``t_s`` stamped more than ``back_s`` before the stamp preceding it
    (``before``: the previous block's last one, when ``t_s`` is a later block), and that
    preceding stamp; None when time never goes back so far."""
    d = np.diff(t_s) if before is None else np.diff(t_s, prepend=before)
    back = np.flatnonzero(d < -back_s)
    if not len(back):
        return None
    i = int(back[0]) + (1 if before is None else 0)
    return i, float(t_s[i - 1] if i else before)


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
    text: str | bytes | Path,
    where: str,
    *,
    delimiter: str | None = None,
    decimal: str | None = None,
    header_line: int = 0,
    skip_after_header: int = 0,
    usecols: list[str] | None = None,
    int_columns: tuple[str, ...] = (),
    sparse: tuple[str, ...] = (),
) -> Table:
    """Parse a whole file into a :class:`Table`.

    The numbers are parsed by polars' CSV reader (chosen on ``bench/formats.py``'s measurement:
    faster than pandas' ``read_csv``, with the dialects built in); a file it refuses, or a row
    it leaves with an empty cell, is read again line by line here to name the line and column.

    Args:
        text: the file's text, its UTF-8 bytes, or its path (read by polars from the file
            itself: no copy of a large file in Python).
        where: the file's name, for messages.
        delimiter: forced delimiter; by default sniffed from the header line.
        decimal: ``.`` or ``,``; by default a comma when the delimiter is not a comma and the
            first data line has a comma in it.
        header_line: 0-based index of the header line (lines before it are skipped: ``sep=;``).
        skip_after_header: lines between the header and the data (a units row).
        usecols: the columns to parse (by header name, case-insensitive); the others (text
            columns such as a local date) are not read. Default: all.
        int_columns: columns written as integers (epoch nanoseconds): parsed as such, which
            is faster than as floats, and returned as float64 like the rest.
        sparse: columns whose cells are mostly empty by design (a stamp only on each packet's
            first row): empty there is NaN, and such a row is not read again line by line.

    Raises:
        FormatError: no header, a row with more or fewer cells than the header, a cell that is
            not a number (file, line and column named), a ``usecols`` name not in the header.
    """
    path = text if isinstance(text, Path) else None
    if path is not None:
        with path.open("rb") as f:
            head_bytes = f.read(HEAD_BYTES)
    else:
        data = text.encode("utf-8") if isinstance(text, str) else text
        data = data.removeprefix(BOM)  # written by Excel's "CSV UTF-8"; not a character
        head_bytes = data[:HEAD_BYTES]
    dialect, header, first = _dialect(
        head_bytes,
        where,
        delimiter,
        decimal,
        header_line,
        skip_after_header,
        usecols,
        int_columns,
        sparse,
    )
    values = _parse_fast(str(path) if path is not None else data, first, dialect)
    if _needs_care(values, dialect):
        if path is not None:
            data = path.read_bytes()
        values = _checked(data, values, first, 0, dialect)
    return Table(
        [header[i] for i in dialect.picked],
        values,
        where,
        first + 1,
        dialect.delimiter,
        dialect.decimal,
    )


# Bytes read for the header and the first data row (and the dialect's sniffing).
HEAD_BYTES = 1 << 16
# Bytes per block when a table is read in blocks (:func:`iter_tables`): ~50 000 rows.
BLOCK_BYTES = 1 << 22


def iter_tables(
    stream: IO[bytes],
    where: str,
    *,
    delimiter: str | None = None,
    decimal: str | None = None,
    header_line: int = 0,
    skip_after_header: int = 0,
    usecols: list[str] | None = None,
    int_columns: tuple[str, ...] = (),
    sparse: tuple[str, ...] = (),
    block_bytes: int | None = None,
) -> Iterator[Table]:
    """:func:`parse_table` block by block: the same values, rows and refusals (file, line and
    column), with memory bounded by ``block_bytes`` however long the file (a zip member is
    read as it is inflated). Every block is whole lines; the header is read from the first.

    Yields:
        One :class:`Table` per block (``first_line``: the file's line of its row 0).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    head = read_full(stream, max(HEAD_BYTES, block_bytes)).removeprefix(BOM)
    dialect, header, first = _dialect(
        head,
        where,
        delimiter,
        decimal,
        header_line,
        skip_after_header,
        usecols,
        int_columns,
        sparse,
    )
    names = [header[i] for i in dialect.picked]
    buffer, skip, start = head, first, 0  # start: the file's 0-based line of the block's line 0
    while True:
        more = read_full(stream, block_bytes) if buffer is not None else b""
        if more:
            buffer += more
            cut = buffer.rfind(b"\n") + 1
            if cut == 0:
                continue  # no whole line yet
            block, buffer = buffer[:cut], buffer[cut:]
        else:
            block, buffer = buffer, None
        if block:
            values = _parse_fast(block, skip, dialect)
            if _needs_care(values, dialect):
                values = _checked(block, values, skip, start, dialect)
            if len(values):
                row0 = start + skip + 1
                yield Table(names, values, where, row0, dialect.delimiter, dialect.decimal)
            start += block.count(b"\n")
            skip = 0
        if buffer is None:
            return


def own_line(exc: FormatError, where: str, shift: int) -> FormatError:
    """A parse refusal naming the file's own line, for a file parsed with ``shift`` lines
    written in above its rows (a header of the reader's making, :class:`EditedHead`)."""
    m = re.match(rf"^{re.escape(where)}:(\d+):", str(exc))
    if not m or not shift:
        return exc
    return FormatError(f"{where}:{int(m.group(1)) - shift}:{str(exc)[m.end() :]}")


def read_full(stream: IO[bytes], n: int) -> bytes:
    """``n`` bytes, or fewer only at the end (a raw or network stream may return less)."""
    out = stream.read(n)
    while out and len(out) < n:
        more = stream.read(n - len(out))
        if not more:
            break
        out += more
    return out


def _dialect(
    head_bytes: bytes,
    where: str,
    delimiter: str | None,
    decimal: str | None,
    header_line: int,
    skip_after_header: int,
    usecols: list[str] | None,
    int_columns: tuple[str, ...],
    sparse: tuple[str, ...] = (),
) -> tuple[_Dialect, list[str], int]:
    """The dialect from a file's start, its header, and the 0-based line of its first row."""
    head = head_bytes.decode("utf-8-sig", errors="replace").splitlines()  # a BOM is not a name
    if len(head) <= header_line or not head[header_line].strip():
        raise FormatError(f"{where}: empty file, expected a header line")
    delimiter = delimiter or sniff_delimiter(head[header_line])
    header = split_header(head[header_line], delimiter)
    first = header_line + 1 + skip_after_header
    if decimal is None:
        sample = head[first] if len(head) > first else ""
        decimal = "," if delimiter != "," and "," in sample else "."
    low = [h.lower() for h in header]
    if usecols is None:
        picked = list(range(len(header)))
    else:
        absent = [c for c in usecols if c.lower() not in low]
        if absent:
            raise FormatError(f"{where}: no column {absent[0]!r} (header: {header})")
        picked = [low.index(c.lower()) for c in usecols]
    trailing = head[header_line].rstrip().endswith(delimiter)
    ints = frozenset(low.index(c.lower()) for c in int_columns if c.lower() in low)
    sparse_at = frozenset(low.index(c.lower()) for c in sparse if c.lower() in low)
    dialect = _Dialect(len(header), picked, delimiter, decimal, where, trailing, ints, sparse_at)
    return dialect, header, first


def _checked(
    data: bytes, values: np.ndarray | None, skip: int, line0: int, d: _Dialect
) -> np.ndarray:
    """The careful path over ``data`` (its first ``skip`` lines not rows; ``line0``: the file's
    0-based line of its line 0): every row when polars refused the text, else the rows it left
    with an empty cell (NaN where a cell is empty, a FormatError naming the line otherwise)."""
    lines = _trim(data.decode("utf-8", errors="replace").splitlines()[skip:], d.delimiter)
    dense = values[:, d.dense] if values is not None and d.sparse else values
    rows = range(len(lines)) if values is None else np.flatnonzero(np.isnan(dense).any(axis=1))
    checked = _parse_careful([lines[r] for r in rows], d, [line0 + skip + 1 + r for r in rows])
    return checked if values is None else values


@dataclass(frozen=True)
class _Dialect:
    n: int  # cells per row
    picked: list[int]  # the columns parsed as numbers
    delimiter: str
    decimal: str
    where: str
    trailing: bool  # every line ends with the delimiter (Shimmer): one more, empty, column
    ints: frozenset[int] = frozenset()  # columns parsed as integers
    sparse: frozenset[int] = frozenset()  # columns empty on most rows by design

    @property
    def dense(self) -> list[int]:
        """Positions (in ``picked``) of the columns a row must fill."""
        return [k for k, i in enumerate(self.picked) if i not in self.sparse]


def _trim(lines: list[str], delimiter: str) -> list[str]:
    """Without the blank lines at the end (a line of delimiters, tabs too, is a padded row)."""
    blank = " \t\r\n\v\f".replace(delimiter, "")
    while lines and not lines[-1].strip(blank):
        lines.pop()
    return lines


def _parse_fast(data: bytes | str, first: int, d: _Dialect) -> np.ndarray | None:
    """All rows by polars; None when it refuses anything (the careful path then reports it).
    Empty cells come back as NaN (and a row with too few cells too: the caller re-reads those)."""
    import polars as pl

    # Unread columns are projected away (never parsed: a text column costs nothing).
    n = d.n + int(d.trailing)
    kinds = {i: pl.Int64 if i in d.ints else pl.Float64 for i in d.picked}
    schema = {f"c{i}": kinds.get(i, pl.String) for i in range(n)}
    wanted = sorted(set(d.picked) | ({d.n} if d.trailing else set()))
    try:
        frame = pl.read_csv(
            data,
            has_header=False,
            skip_rows=first,
            separator=d.delimiter,
            decimal_comma=d.decimal == ",",
            schema=schema,
            columns=wanted,
            quote_char='"',
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if d.trailing and frame.height and frame[f"c{d.n}"].null_count() != frame.height:
        return None  # a cell past the header's columns
    # One copy into [N, C] (each column contiguous), chunk by chunk from polars' own buffers
    # (a whole column's to_numpy would first join its chunks: a second copy); nulls as NaN.
    out = np.empty((frame.height, len(d.picked)), order="F")
    for k, i in enumerate(d.picked):
        column, a = frame.get_column(f"c{i}"), 0
        for n in column.chunk_lengths():
            out[a : a + n, k] = column.slice(a, n).to_numpy()
            a += n
    return out


def _needs_care(values: np.ndarray | None, d: _Dialect) -> bool:
    """Whether polars' values need the careful path: it refused the text, or left a cell empty
    (NaN) in a column that is not sparse."""
    if values is None:
        return True
    if not d.sparse:
        return _has_nan(values)
    return any(_has_nan(values[:, k]) for k in d.dense)


def _has_nan(values: np.ndarray) -> bool:
    """Whether any value is NaN (a sum first: one pass, no temporary, NaN-free almost always)."""
    return bool(np.isnan(values.sum())) and bool(np.isnan(values).any())


def _parse_careful(lines: list[str], d: _Dialect, line_numbers: list[int]) -> np.ndarray:
    out = np.empty((len(lines), len(d.picked)))
    for r, (line, line_no) in enumerate(zip(lines, line_numbers, strict=True)):
        cells = next(csv.reader([line], delimiter=d.delimiter)) if line else []
        if len(cells) == d.n + 1 and cells[-1].strip() == "":
            cells = cells[:-1]
        if len(cells) != d.n:
            raise FormatError(f"{d.where}:{line_no}: expected {d.n} fields, got {len(cells)}")
        for k, c in enumerate(d.picked):
            cell = cells[c].strip()
            if cell == "" or cell.lower() == "nan":
                out[r, k] = np.nan
            elif not _NUMBER.match(cell) or (d.decimal == "." and "," in cell):
                raise FormatError(f"{d.where}:{line_no}: column {c + 1} is not a number: {cell!r}")
            else:
                out[r, k] = float(cell.replace(",", ".")) if d.decimal == "," else float(cell)
    return out


class EditedHead:
    """A file's bytes as they stream, with one line written in at line ``at`` (0-based):
    inserted before it, or in its place (``replace``). Readers that parse a file with a header
    line of their own making (a headerless layout's ``#1,#2,...``; ShimmerCapture's channel
    names made unique) stream it through this; line numbers shift by one when inserting."""

    def __init__(self, stream: IO[bytes], at: int, line: str, replace: bool = False):
        lead = b"".join(stream.readline() for _ in range(at)).removeprefix(BOM)
        if replace:
            stream.readline()
        after = stream.read(len(BOM)) if at == 0 else b""  # a BOM before the first row
        after = b"" if after == BOM else after
        self._head, self._stream = lead + line.encode() + b"\n" + after, stream

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(n)
        if n is None or n < 0:
            out, self._head = self._head, b""
            return out + self._stream.read()
        out, self._head = self._head[:n], self._head[n:]
        return out + (self._stream.read(n - len(out)) if len(out) < n else b"")
