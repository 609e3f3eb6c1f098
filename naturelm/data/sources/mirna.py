"""Human pre-miRNA hairpins from Debian `optimir` (miRBase v22 + miRCarta v1.1; optional source).

The package needs no install: `apt-get download optimir && dpkg-deb -x optimir_*.deb DIR` and point
$NATURELM_OPTIMIR at DIR (or extract into `~/.cache/naturelm/optimir/root`, searched by default).
Sequences are DNA letters in the files; records carry both the DNA and the RNA (T -> U).
"""
from __future__ import annotations

import os
from pathlib import Path

from naturelm.data.sources.common import Loaded, SourceReport, alphabet_checker, cache_dir, open_text, read_fasta
from naturelm.errors import DataSourceMissing

ENV_VAR = "NATURELM_OPTIMIR"
FILES = ("hsa_hairpins_miRBase_v22.fa", "hsa_hairpins_miRCarta_v1.1.fa")
_REL = Path("usr/lib/python3/dist-packages/optimir/resources/fasta")
HINT = ("apt-get install optimir, or without root: mkdir -p ~/.cache/naturelm/optimir && cd ~/.cache/naturelm/optimir "
        f"&& apt-get download optimir && dpkg-deb -x optimir_*.deb root (or set {ENV_VAR} to the extracted folder)")


def resolve_dir(path: str | os.PathLike | None = None) -> Path:
    """The optimir `resources/fasta` folder: argument, $NATURELM_OPTIMIR, the system install, then the cache."""
    given = path or os.environ.get(ENV_VAR)
    roots = [Path(given)] if given else [Path("/"), cache_dir("optimir") / "root"]
    for root in roots:
        for cand in (root, root / _REL, root / "resources" / "fasta"):
            if (cand / FILES[0]).is_file():
                return cand
    raise DataSourceMissing("optimir hairpin FASTA files", HINT)


def load_mirna(path: str | os.PathLike | None = None, limit: int | None = None) -> Loaded:
    """`{"name", "dna", "rna"}` records, unique by sequence; raises DataSourceMissing when optimir is absent."""
    folder = resolve_dir(path)
    report = SourceReport("optimir:hairpins", _version(folder), str(folder))
    valid = alphabet_checker("dna")
    records, seen = [], set()
    for fname in FILES:
        file = folder / fname
        if not file.is_file():
            report.reject(f"missing_file:{fname}")
            continue
        with open_text(file, newline=None) as f:
            for header, seq in read_fasta(f, file):
                if limit is not None and report.read >= limit:
                    break
                report.read += 1
                dna = seq.upper().replace("U", "T")
                if not valid(dna):
                    report.reject("invalid_sequence")
                    continue
                if dna in seen:
                    report.reject("duplicate_sequence")
                    continue
                seen.add(dna)
                records.append({"name": header.split()[0], "dna": dna, "rna": dna.replace("T", "U")})
    report.kept = len(records)
    return Loaded(records, report)


def _version(folder: Path) -> str | None:
    for root in [folder, *folder.parents]:
        changelog = root / "usr/share/doc/optimir/changelog.Debian.gz"
        if changelog.is_file():
            import gzip

            try:
                with gzip.open(changelog, "rt", errors="replace") as f:
                    first = f.readline()
            except (OSError, EOFError):  # a corrupt changelog only loses the version
                return None
            return first.split("(")[1].split(")")[0] if "(" in first else None
    return None
