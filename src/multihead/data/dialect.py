"""How a delimited text table is written, detected from its first lines before parsing.

Tables arrive from Excel, R, REDCap, GEO and TCGA exports: `;` with decimal commas, a `.csv`
that is really tab-separated, Excel's `sep=,` first line, `#` comment lines above the header,
a byte-order mark, CRLF or lone-CR line ends, and R's `write.table` header that has no cell
for the row names. The delimiter is found with `csv.Sniffer` and kept only if the header and
most data lines then agree on the number of fields; `data.delimiter` / `data.decimal` set it
explicitly when detection cannot tell.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from multihead.data.file_formats import FileFormat, read_blocks
from multihead.errors import ConfigError, DataError

#: delimiters tried, after the sniffed one and the one the file name implies
DELIMITERS = (",", "\t", ";", "|")
DECIMALS = (".", ",")
COMMENT_PREFIX = "#"
#: Excel writes `sep=;` as the first line of a CSV to say which delimiter it used
_EXCEL_SEP = re.compile(r"^\s*sep=(.)\s*$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
#: `1,234` or `12,345,678`: a thousands separator as much as a decimal comma
_THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(,\d{3})+$")
#: enough lines to see the dialect; the last line of the sample may be cut, so it is left out
SAMPLE_CHARS = 256 << 10
SAMPLE_LINES = 50
_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", " ": "space"}
_LINE_ENDS = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}


@dataclass(frozen=True)
class TextDialect:
    """Everything a parser needs to read the table as written."""

    delimiter: str
    decimal: str = "."
    skip_lines: int = 0  # lines above the header: Excel's `sep=` line, comments, blank lines
    line_end: str = "\n"
    bom: bool = False
    header_lacks_id: bool = False  # R write.table: data rows have one field more than the header

    def describe(self) -> str:
        parts = [f"{_NAMES.get(self.delimiter, repr(self.delimiter))}-separated"]
        parts.append(f"decimal {'comma' if self.decimal == ',' else 'point'}")
        parts.append(f"{_LINE_ENDS[self.line_end]} line ends")
        if self.skip_lines:
            parts.append(f"{self.skip_lines} line(s) above the header skipped")
        if self.bom:
            parts.append("byte-order mark")
        if self.header_lacks_id:
            parts.append("header without a row-name cell (R write.table)")
        return ", ".join(parts)


def _option(value: object, key: str, allowed: tuple[str, ...]) -> str | None:
    """`data.delimiter` / `data.decimal`: null (detect) or one of the allowed characters."""
    if value is None:
        return None
    text = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "point": "."}
    value = text.get(str(value).lower(), str(value))
    if value not in allowed:
        raise ConfigError(
            f"{key}={value!r}: choose null (detect) or one of {[_NAMES.get(a, a) for a in allowed]}"
        )
    return value


def _head(path: Path, fmt: FileFormat, key: str) -> tuple[str, bool]:
    """The first characters (line ends untouched, a byte-order mark kept to be seen), and
    whether the file goes on after them."""
    blocks = read_blocks(path, fmt, key, SAMPLE_CHARS)
    head = next(blocks, b"")
    blocks.close()
    return head.decode("utf-8", errors="replace"), len(head) >= SAMPLE_CHARS


def _line_end(text: str) -> str:
    crlf = text.count("\r\n")
    lone_cr = text.count("\r") - crlf
    lone_lf = text.count("\n") - crlf
    if lone_cr > max(crlf, lone_lf):
        return "\r"
    return "\r\n" if crlf > lone_lf else "\n"


def _fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _consistent(header: str, rows: list[str], delimiter: str) -> tuple[bool, bool, int]:
    """(the delimiter fits, rows have one field more than the header (R), how well it fits).

    It fits when the header and most rows agree on >= 2 fields (or the rows have one more:
    an R header), or when no row is wider than a header of >= 2 fields (spreadsheets leave
    trailing empty cells out). The score ranks fits: same width, R style, shorter rows; then
    more fields."""
    width = len(_fields(header, delimiter))
    counts = Counter(len(_fields(r, delimiter)) for r in rows)
    if not counts:
        return width >= 2, False, (2, width)
    modal, seen = counts.most_common(1)[0]
    if modal >= 2 and seen >= 0.8 * len(rows) and modal in (width, width + 1):
        r_style = modal == width + 1
        return True, r_style, (1 if r_style else 2, modal)
    short = width >= 2 and min(counts) >= 2 and max(counts) <= width
    return short, False, (0, modal)


def _sniffed(header: str, rows: list[str]) -> str | None:
    try:
        return csv.Sniffer().sniff("\n".join([header, *rows[:20]]), "".join(DELIMITERS)).delimiter
    except csv.Error:
        return None


def _decimal(rows: list[str], delimiter: str, path: Path, key: str) -> str:
    """Decimal comma when numbers are written `1,5` and none `1.5` (never with `,` fields).

    When every such number could as well be a thousands separator (`1,234`), guessing would
    be silently wrong by a factor of 1000: a DataError asks for `data.decimal`."""
    if delimiter == ",":
        return "."
    comma = point = thousands = 0
    example = ""
    for row in rows:
        for cell in _fields(row, delimiter)[1:]:
            cell = cell.strip()
            if _DECIMAL_COMMA.match(cell) or _THOUSANDS.match(cell):
                comma += 1
                thousands += bool(_THOUSANDS.match(cell))
                example = example or cell
            point += bool(_DECIMAL_POINT.match(cell))
    if comma and thousands == comma and not point:
        raise DataError(
            f"{path} ({key}): numbers such as {example!r} may have a decimal comma or a "
            "thousands separator; set data.decimal=comma if the comma is decimal, or export "
            "the file without thousands separators"
        )
    return "," if comma and not point else "."


def _refuse_explicit(path: Path, key: str, chosen: str, header: str, rows: list[str]) -> None:
    """An explicit delimiter the file contradicts, when another one fits: say which."""
    fits = [d for d in DELIMITERS if d != chosen and _consistent(header, rows, d)[0]]
    if fits:
        raise DataError(
            f"{path} ({key}): read as {_NAMES.get(chosen, repr(chosen))}-separated "
            f"(data.delimiter) its header has {len(_fields(header, chosen))} field(s), but the "
            f"file looks {_NAMES[fits[0]]}-separated; set data.delimiter={_NAMES[fits[0]]} "
            "or null (detect each file's own)"
        )


def detect_dialect(
    path: Path,
    fmt: FileFormat,
    key: str,
    delimiter: object = None,
    decimal: object = None,
) -> TextDialect:
    """The table's dialect; a DataError naming the file and `data.delimiter` when unclear."""
    chosen = _option(delimiter, "data.delimiter", (*DELIMITERS, " "))
    point = _option(decimal, "data.decimal", DECIMALS)
    text, cut = _head(path, fmt, key)
    bom = text.startswith("\ufeff")
    text = text.lstrip("\ufeff")
    line_end = _line_end(text)
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[:-1]  # cut mid-line by the sample size
    skip = 0
    if lines and (excel := _EXCEL_SEP.match(lines[0])):
        chosen = chosen or excel.group(1)
        skip = 1
    while skip < len(lines) and (
        not lines[skip].strip() or lines[skip].lstrip().startswith(COMMENT_PREFIX)
    ):
        skip += 1
    if skip >= len(lines):
        raise DataError(f"{path} ({key}): no header line (the file is empty or all comments)")
    header = lines[skip]
    rows = [r for r in lines[skip + 1 : skip + 1 + SAMPLE_LINES] if r.strip()]
    candidates = [chosen] if chosen else [_sniffed(header, rows), fmt.separator, *DELIMITERS]
    verdicts = {c: _consistent(header, rows, c) for c in dict.fromkeys(c for c in candidates if c)}
    if chosen and not verdicts[chosen][0]:
        _refuse_explicit(path, key, chosen, header, rows)
    # a header as wide as the rows beats an R-style one, then more fields beat fewer
    # (`S1<tab>1,5<tab>x` has one more tab field than an R header, and one more comma field)
    fitting = [c for c, (ok, _, _) in verdicts.items() if ok or chosen]
    if fitting:
        best = max(fitting, key=lambda c: verdicts[c][2])
        return TextDialect(
            best,
            point or _decimal(rows, best, path, key),
            skip,
            line_end,
            bom,
            verdicts[best][1],
        )
    widths = {_NAMES[d]: len(_fields(header, d)) for d in DELIMITERS}
    if set(widths.values()) == {1}:  # a single column: the readers say what is missing
        return TextDialect(fmt.separator or ",", point or ".", skip, line_end, bom)
    raise DataError(
        f"{path} ({key}): cannot tell the delimiter: no delimiter gives the header and the "
        f"data lines the same number of fields (header fields per delimiter: {widths}); "
        "set data.delimiter (comma, tab, semicolon or pipe)"
    )
