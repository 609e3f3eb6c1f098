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
    """(rows, report) of a CSV/TSV file: the first `limit` rows as dicts, each counted in `report.read`.

    The report is named `name` and carries the installed version of distribution `dist`.
    """
    report = SourceReport(name, dist_version(dist), str(path))
    return _counted_rows(path, report, limit, delimiter), report


def _counted_rows(path: Path, report: SourceReport, limit: int | None, delimiter: str):
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter=delimiter):
            if limit is not None and report.read >= limit:
                return
            report.read += 1
            yield row


def read_jsonl(path: Path):
    """The records of a JSONL file appended to with resume (none when absent); a line cut by an interruption is skipped."""
    if not path.exists():
        return
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def dist_version(dist: str) -> str | None:
    """Installed version of a distribution, None when unknown."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_fasta(lines, path=None) -> list[tuple[str, str]]:
    """(header without '>', sequence) pairs from FASTA text lines (an open file or any iterable of lines).

    DataFileError naming the file and line for text before the first header, an empty header, undecodable
    bytes (a binary or non-UTF-8 file) or a truncated compressed file."""
    import gzip
    import zlib

    from naturelm.errors import DataFileError

    where = path if path is not None else getattr(lines, "name", "<fasta>")
    out, header, seq, number = [], None, [], 0
    try:
        for number, line in enumerate(lines, 1):
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
    except UnicodeDecodeError as exc:
        raise DataFileError(where, f"not UTF-8 text ({exc.reason})", _first_undecodable_line(where)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFileError(where, f"truncated or corrupt compressed file ({exc})", number + 1) from None
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
