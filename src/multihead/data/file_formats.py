"""What a data file is, from its name, checked against its first bytes before parsing.

A mislabelled file (a CSV named .parquet, a text file named .gz) otherwise fails deep inside
a parser with a message that names neither the file nor the setting that pointed to it.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from multihead.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
_BINARY_KINDS = {".parquet": "parquet", ".pq": "parquet", ".h5ad": "h5ad"}


#: what reading a truncated or corrupt gzip stream raises
GZIP_ERRORS = (EOFError, OSError, zlib.error)


def damaged_gzip(path: Path, key: str, err: BaseException) -> DataError:
    """A truncated or corrupt .gz, named, instead of a raw EOFError from deep in a parser."""
    return DataError(
        f"{key}: {path} is a truncated or damaged gzip file ({type(err).__name__}: {err}); "
        "an interrupted download or copy? Download it again (`gzip -t FILE` checks it)"
    )


def read_blocks(path: Path, fmt: FileFormat, key: str, size: int = 16 << 20) -> Iterator[bytes]:
    """The file's (decompressed) bytes block by block; a damaged .gz is a DataError."""
    opener = gzip.open if fmt.gzipped else open
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(size):
                yield block
    except GZIP_ERRORS as err:
        if not fmt.gzipped:
            raise
        raise damaged_gzip(path, key, err) from None


@dataclass(frozen=True)
class FileFormat:
    """`kind` is text, parquet or h5ad; text files have a separator and may be gzipped."""

    kind: str
    separator: str | None = None
    gzipped: bool = False

    def open_text(self, path: Path) -> IO[str]:
        """Text with universal line ends (LF, CRLF, lone CR) and any byte-order mark dropped."""
        if self.gzipped:
            return gzip.open(path, "rt", encoding="utf-8-sig")
        return open(path, encoding="utf-8-sig")  # noqa: SIM115


def require_file(path: str | Path | None, key: str) -> Path:
    """The path as a Path, or a DataError naming the config key when it is not a file."""
    if path is None or str(path).strip() in ("", "???"):
        raise DataError(f"{key} is not set: give the file as {key}=PATH")
    resolved = Path(str(path)).expanduser()
    if not resolved.exists():
        raise DataError(f"{key}: file not found: {resolved.resolve()}")
    if not resolved.is_file():
        raise DataError(f"{key}: {resolved.resolve()} is not a file")
    return resolved


def detect_format(path: Path, key: str, allowed: tuple[str, ...]) -> FileFormat:
    """Format from the file name (`.csv`, `.tsv.gz`, `.parquet`, `.h5ad`, ...)."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    last = suffixes[-2] if gzipped and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if last in _TEXT_SEPARATORS and "text" in allowed:
        return FileFormat("text", _TEXT_SEPARATORS[last], gzipped)
    if last in _BINARY_KINDS and _BINARY_KINDS[last] in allowed and not gzipped:
        return FileFormat(_BINARY_KINDS[last])
    names = {"text": ".csv/.tsv/.txt (optionally .gz)", "parquet": ".parquet", "h5ad": ".h5ad"}
    raise DataError(
        f"{key}: cannot tell the format of {path.name!r} from its name; "
        f"expected {', '.join(names[k] for k in allowed)}"
    )


def check_signature(path: Path, fmt: FileFormat, key: str) -> None:
    """Refuse a file whose first bytes contradict its name, before any parser sees it."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise DataError(f"{key}: {path} is empty (0 bytes)")
    expected = {"parquet": PARQUET_MAGIC, "h5ad": HDF5_MAGIC}.get(fmt.kind)
    if expected is not None and not head.startswith(expected):
        raise DataError(
            f"{key}: {path} is not a {fmt.kind} file although its name says so "
            f"(it starts with {head[:16]!r})"
        )
    if fmt.kind != "text":
        return
    if fmt.gzipped:
        if not head.startswith(GZIP_MAGIC):
            raise DataError(
                f"{key}: {path} is not gzip-compressed although its name ends "
                f"in .gz (it starts with {head[:16]!r})"
            )
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
        except GZIP_ERRORS as err:
            raise damaged_gzip(path, key, err) from None
    if b"\x00" in head or head.startswith((PARQUET_MAGIC, HDF5_MAGIC, GZIP_MAGIC)):
        raise DataError(
            f"{key}: {path} is binary, not the delimited text its name says "
            f"(it starts with {head[:16]!r})"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # a multi-byte character cut at the 4 KiB boundary is fine
            raise DataError(f"{key}: {path} is not UTF-8 text: {err}") from None


def open_checked(
    path: str | Path | None, key: str, allowed: tuple[str, ...]
) -> tuple[Path, FileFormat]:
    """require_file + detect_format + check_signature: one call per configured file."""
    resolved = require_file(path, key)
    fmt = detect_format(resolved, key, allowed)
    check_signature(resolved, fmt, key)
    return resolved, fmt
