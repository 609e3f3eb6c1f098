"""Shared pieces of the loaders: locating package data files and the per-source report."""
from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from naturelm.errors import DataSourceMissing


@dataclass
class SourceReport:
    """What a loader did: rows read, records kept, rows rejected per reason; or why the source is missing."""

    name: str
    version: str | None = None
    path: str | None = None
    read: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    missing: str | None = None  # install hint when the source is absent

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def to_dict(self) -> dict:
        if self.missing is not None:
            return {"name": self.name, "status": "missing", "install": self.missing}
        return {"name": self.name, "version": self.version, "path": self.path, "read": self.read, "kept": self.kept,
                "rejected": dict(sorted(self.rejected.items()))}


@dataclass
class Loaded:
    """Records of one source plus its report."""

    records: list[dict]
    report: SourceReport


def cache_dir(sub: str = "") -> Path:
    """`$NATURELM_CACHE/sub`, else `~/.cache/naturelm/sub`."""
    root = os.environ.get("NATURELM_CACHE") or Path.home() / ".cache" / "naturelm"
    return Path(root) / sub


def package_file(package: str, rel: str, hint: str) -> Path:
    """A data file shipped inside an installed package, found with importlib (the package is never imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceMissing(f"package {package!r}", hint)
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.exists():
        raise DataSourceMissing(str(path), hint)
    return path


def read_table(path: Path, name: str, dist: str, limit: int | None = None, delimiter: str = ","):
    """(rows, report) of a CSV/TSV file: the first `limit` rows as dicts (`read_rows`), each counted in `report.read`.

    The report is named `name` and carries the installed version of distribution `dist`.
    """
    report = SourceReport(name, dist_version(dist), str(path))
    return _counted_rows(path, report, limit, delimiter), report


def _counted_rows(path: Path, report: SourceReport, limit: int | None, delimiter: str):
    for row in read_rows(path, delimiter):
        if limit is not None and report.read >= limit:
            return
        report.read += 1
        yield row


# --- reading data files: every failure a DataFileError naming the file and line -------------------------------

# A CSV/TSV field longer than this fails the file (it is csv's own limit, so no process-wide setting changes).
MAX_FIELD_CHARS = 131_072


def open_text(path: Path, newline: str | None = ""):
    """A data file as UTF-8 text, gunzipped when its name ends in .gz."""
    import gzip

    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline=newline)
    return open(path, encoding="utf-8", newline=newline)


def guarded_reads(items, path, lines_read=lambda: None):
    """The items of an iterator reading `path` (lines, csv rows), with every read failure raised as DataFileError
    naming the file and the line (`lines_read()` counts the lines read so far): bytes that are not UTF-8 (a binary
    or latin-1 file), a truncated or corrupt gzip stream, a field over MAX_FIELD_CHARS or another malformed CSV
    row, or an OS error (a folder, no permission). Errors of the consumer's own code are not touched."""
    import gzip
    import lzma
    import zlib

    from naturelm.errors import DataFileError

    try:
        yield from items
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not UTF-8 text ({exc.reason}); a binary or differently encoded file",
                            _first_undecodable_line(path)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as exc:
        raise DataFileError(path, f"truncated or corrupt compressed file ({exc})", _next(lines_read())) from None
    except csv.Error as exc:  # raised on the row just read
        raise DataFileError(path, f"malformed row ({exc})", lines_read()) from None
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror or exc})", _next(lines_read())) from None


def _next(lines_read: int | None) -> int | None:
    """The line a stream was reading when it failed: the one after those read."""
    return None if lines_read is None else lines_read + 1


def read_lines(path: Path):
    """(line number, line) pairs of a text file (plain or .gz), read through `guarded_reads`."""
    number = 0

    def lines():
        nonlocal number
        with open_text(path, newline=None) as f:
            for number, line in enumerate(f, 1):
                yield number, line

    return guarded_reads(lines(), path, lambda: number)


def read_rows(path: Path, delimiter: str = ",", header: bool = True, require: tuple[str, ...] = (), **fmt):
    """Rows of a CSV/TSV file (plain or .gz): dicts keyed by the header row when `header`, else lists; `fmt` goes
    to `csv.reader` (e.g. `quoting=csv.QUOTE_NONE`). Read failures are DataFileErrors naming file and line
    (`guarded_reads`); a header without every `require`d column is one too (line 1)."""
    from naturelm.errors import DataFileError

    state: dict = {}

    def rows():
        with open_text(path) as f:
            reader = csv.reader(f, delimiter=delimiter, **fmt)
            state["reader"] = reader
            if not header:
                yield from reader
                return
            columns = next(reader, None)
            if columns is None:
                columns = []
            missing = [c for c in require if c not in columns]
            if missing:
                raise DataFileError(path, f"no column {', '.join(map(repr, missing))} in the header "
                                          f"{columns[:12]!r}", 1)
            for values in reader:
                if values:
                    yield dict(zip(columns, values))

    return guarded_reads(rows(), path, lambda: state["reader"].line_num if "reader" in state else 0)


def read_jsonl_records(path: Path, cut_last_line: bool = False):
    """(line number, record) of every non-blank line of a JSONL file (plain or .gz); each line must be a JSON
    object, else DataFileError naming the file and line. `cut_last_line`: a last line an interrupted append left
    unfinished (no newline at its end) is dropped instead (resumable caches)."""
    from naturelm.errors import DataFileError

    pending = None
    for number, line in read_lines(path):
        if pending is not None:
            raise pending
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            error = DataFileError(path, f"not a JSON line ({getattr(exc, 'msg', exc)}); a truncated or corrupt "
                                        "file", number)
            if cut_last_line and not line.endswith("\n"):
                pending = error  # only a last line may be cut
                continue
            raise error from None
        if not isinstance(rec, dict):
            raise DataFileError(path, f"expected a JSON object per line, got {type(rec).__name__}", number)
        yield number, rec


def read_json(path: Path):
    """The JSON document of a file (plain or .gz); DataFileError naming the file and line when it is not JSON."""
    from naturelm.errors import DataFileError

    text = "".join(line for _, line in read_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"not JSON ({exc.msg})", exc.lineno) from None
    except RecursionError:
        raise DataFileError(path, "JSON nested too deeply") from None


def read_jsonl(path: Path):
    """The records of a JSONL file appended to with resume (none when absent); a last line cut by an interruption
    is skipped, any other bad line is a DataFileError."""
    if not path.exists():
        return
    for _, rec in read_jsonl_records(path, cut_last_line=True):
        yield rec


def finite_number(text) -> float | None:
    """The float a field holds when finite (not NaN, not +-inf, not an overflowing `1e400`), else None."""
    import math

    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def integer(text) -> int | None:
    """The integer a field holds (`3`, `3.0`), else None (text, a fraction, NaN, inf, `1e400`)."""
    value = finite_number(text)
    return int(value) if value is not None and value.is_integer() else None


def dist_version(dist: str) -> str | None:
    """Installed version of a distribution, None when unknown."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_fasta(lines, path=None) -> list[tuple[str, str]]:
    """(header without '>', sequence) pairs from FASTA text lines (an open file or any iterable of lines).

    DataFileError naming the file and line for text before the first header, an empty header, undecodable
    bytes (a binary or non-UTF-8 file) or a truncated compressed file (`guarded_reads`)."""
    from naturelm.errors import DataFileError

    where = path if path is not None else getattr(lines, "name", "<fasta>")
    out, header, seq, number = [], None, [], 0
    for number, line in guarded_reads(enumerate(lines, 1), where, lambda: number):
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                out.append((header, "".join(seq)))
            header, seq = line[1:].strip(), []
            if not header:
                raise DataFileError(where, "empty FASTA header", number)
        elif line and header is None:
            raise DataFileError(where, f"text before the first '>' header: {line[:40]!r}", number)
        elif line:
            seq.append(line)
    if header is not None:
        out.append((header, "".join(seq)))
    return out


def _first_undecodable_line(path) -> int | None:
    """The 1-based line of a file's first byte sequence that is not UTF-8 (text readers decode in chunks, so the
    line they were on is not the line at fault); None when the file cannot be scanned."""
    import gzip
    from pathlib import Path

    p = Path(str(path))
    if not p.is_file():
        return None
    try:
        with (gzip.open if p.suffix == ".gz" else open)(p, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return number
    except (OSError, EOFError):
        return None
    return None


def limited(items, limit: int | None):
    """The first `limit` items (all when None)."""
    return items if limit is None else items[:limit]


def canon(smiles: str) -> str | None:
    """Canonical SMILES exactly as `naturelm.language.codecs.try_canonical` gives it, None when invalid.

    Without a ':' the SMILES has no atom maps, so the per-atom map reset is skipped (same output, faster).
    """
    from naturelm.errors import EntityError
    from naturelm.language.codecs import smiles_tokens, try_canonical

    if ":" in smiles:
        return try_canonical(smiles)
    try:
        smiles_tokens(smiles)
    except EntityError:
        return None
    from rdkit import Chem

    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def alphabet_checker(domain: str):
    """A fast validity test for a sequence domain: a full match of the codec's alphabet."""
    import re

    from naturelm.language.codecs import get_codec

    pattern = re.compile(f"[{re.escape(get_codec(domain).alphabet)}]+")
    return lambda seq: pattern.fullmatch(seq) is not None
