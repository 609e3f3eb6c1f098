"""UniProt sequences with protein names and organisms, from Debian `mmseqs2-examples` (optional source).

`/usr/share/doc/mmseqs2/example-data/DB.fasta.gz`: 20,000 UniProt entries, headers like
`tr|W0FSK4|W0FSK4_9FLAV Genome polyprotein (Fragment) OS=Dengue virus 3 PE=4 SV=1`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from naturelm.data.sources.common import Loaded, SourceReport, alphabet_checker, open_text, read_fasta
from naturelm.errors import DataSourceMissing

ENV_VAR = "NATURELM_UNIPROT_FASTA"
DEFAULT = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
HINT = f"apt-get install mmseqs2-examples (or set {ENV_VAR} to a UniProt FASTA file)"
_HEADER = re.compile(r"^(?:(?:sp|tr)\|(?P<acc>[^|]+)\|\S+|(?P<id>\S+))\s+(?P<name>.*?)\s+OS=(?P<os>.*?)(?:\s+[A-Z]{2}=|$)")


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Argument, then $NATURELM_UNIPROT_FASTA, then the Debian mmseqs2-examples file."""
    p = Path(path or os.environ.get(ENV_VAR) or DEFAULT)
    if not p.is_file():
        raise DataSourceMissing(f"UniProt FASTA {p}", HINT)
    return p


def parse_header(header: str) -> dict | None:
    """`{"accession", "name", "organism"}` of a UniProt FASTA header, None when it has no name or OS= field."""
    m = _HEADER.match(header)
    if m is None or not m.group("name").strip():
        return None
    return {"accession": m.group("acc") or m.group("id"), "name": m.group("name").strip(),
            "organism": m.group("os").strip()}


def load_uniprot(path: str | os.PathLike | None = None, limit: int | None = None) -> Loaded:
    """`{"accession", "name", "organism", "sequence"}` records; raises DataSourceMissing when absent."""
    p = resolve_path(path)
    report = SourceReport("uniprot:mmseqs2-examples", _deb_version("mmseqs2-examples"), str(p))
    valid = alphabet_checker("protein")
    with open_text(p, newline=None) as f:
        entries = read_fasta(f, p)
    records = []
    for header, seq in entries[:limit] if limit is not None else entries:
        report.read += 1
        info = parse_header(header)
        if info is None:
            report.reject("bad_header")
            continue
        seq = seq.upper()
        if not valid(seq):
            report.reject("invalid_sequence")
            continue
        records.append({**info, "sequence": seq})
    report.kept = len(records)
    return Loaded(records, report)


def _deb_version(package: str) -> str | None:
    """Version of an installed Debian package from dpkg's status file (None when not installed via dpkg)."""
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        return None
    block = None
    for line in status.read_text(errors="replace").splitlines():
        if line.startswith("Package: "):
            block = line[9:].strip()
        elif block == package and line.startswith("Version: "):
            return line[9:].strip()
    return None
