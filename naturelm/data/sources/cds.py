"""Gene DNA <-> protein pairs (the central dogma), every pair checked by Biopython's translation.

- PyPI `pyrodigal==3.7.1` (GPL-3.0+, NCBI data): its test data `tests/data/<genome>.{single,meta}.{fna,faa}.gz`,
  gene DNA and protein matched by id; and the complete *C. diphtheriae* NCTC11397 genome, whose genes pyrodigal
  predicts (`load_pyrodigal_genome`; needs pyrodigal importable).
- Debian `emboss-test` (curated, the DNA -> protein test split when present): the CDS features with a
  `/translation` of `/usr/share/EMBOSS/test/{embl,genbank}`. Without root: `apt-get download emboss-test &&
  dpkg-deb -x emboss-test_*.deb ~/.cache/naturelm/emboss/root` (or set $NATURELM_EMBOSS to the extracted folder).

Only complete genes (start codon .. stop codon, whole codons) of the standard or bacterial code are kept, and
only when `naturelm.tools.translation.translate_cds` of the DNA equals the source's protein.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from naturelm.data.sources.common import (Loaded, SourceReport, cache_dir, dist_version, integer, open_text,
                                          package_file, read_fasta)
from naturelm.errors import DataFileError, DataSourceMissing
from naturelm.tools.translation import STANDARD_AA, clean_dna, is_cds, translate_cds

PYRODIGAL_HINT = "pip install pyrodigal==3.7.1"
EMBOSS_ENV = "NATURELM_EMBOSS"
EMBOSS_HINT = ("apt-get install emboss-test, or without root: mkdir -p ~/.cache/naturelm/emboss && cd "
               "~/.cache/naturelm/emboss && apt-get download emboss-test && dpkg-deb -x emboss-test_*.deb root "
               f"(or set {EMBOSS_ENV} to the extracted folder)")
GENOME = "GCF_001457455.1_NCTC11397_genomic.fna.gz"
_EMBOSS_REL = Path("usr/share/EMBOSS/test")


def _pair(report: SourceReport, rid: str, dna: str, protein: str, source: str, table: int = 11) -> dict | None:
    """A checked record, or None with the reason counted."""
    dna, protein = clean_dna(dna), protein.strip().upper().rstrip("*")
    if dna is None or not protein or not set(protein) <= STANDARD_AA:
        report.reject("invalid_sequence")
        return None
    if not is_cds(dna, table):
        report.reject("not_a_complete_cds")
        return None
    if translate_cds(dna, table) != protein:
        report.reject("translation_mismatch")
        return None
    return {"id": rid, "dna": dna, "protein": protein, "source": source}


def _add_once(report: SourceReport, records: list, seen: set, rec: dict | None) -> None:
    """Append a checked record (None: already counted as rejected) once per DNA sequence; a repeat counts as a
    duplicate."""
    if rec is None:
        return
    if rec["dna"] in seen:
        report.reject("duplicate")
        return
    seen.add(rec["dna"])
    records.append(rec)


def load_pyrodigal_pairs(limit: int | None = None) -> Loaded:
    """`{"id", "dna", "protein", "source"}` from pyrodigal's `*.single.*` and `*.meta.*` test files (a gene found
    by both modes is kept once)."""
    folder = package_file("pyrodigal", "tests/data", PYRODIGAL_HINT)
    report = SourceReport("pyrodigal:test-genes", dist_version("pyrodigal"), str(folder))
    records, seen = [], set()
    for fna in sorted(folder.glob("*.fna.gz")):
        m = re.match(r"(.+)\.(single|meta)\.fna\.gz$", fna.name)
        faa = fna.with_name(fna.name.replace(".fna.gz", ".faa.gz"))
        if not m or not faa.is_file():
            continue
        with open_text(faa, newline=None) as f:
            proteins = {h.split()[0]: s for h, s in read_fasta(f, faa)}
        with open_text(fna, newline=None) as f:
            for header, dna in read_fasta(f, fna):
                if limit is not None and report.read >= limit:
                    break
                report.read += 1
                rid = header.split()[0]
                if "partial=00" not in header:
                    report.reject("partial_gene")
                    continue
                if rid not in proteins:
                    report.reject("no_protein")
                    continue
                _add_once(report, records, seen, _pair(report, f"{m.group(1)}:{rid}", dna, proteins[rid], f"pyrodigal:{m.group(2)}"))
    report.kept = len(records)
    return Loaded(records, report)


def load_pyrodigal_genome(limit: int | None = None) -> Loaded:
    """Genes pyrodigal predicts (single mode, table 11) on the bundled complete genome, as checked pairs."""
    try:
        import pyrodigal
    except ImportError:
        raise DataSourceMissing("pyrodigal", PYRODIGAL_HINT) from None
    path = package_file("pyrodigal", f"tests/data/{GENOME}", PYRODIGAL_HINT)
    report = SourceReport("pyrodigal:genome", dist_version("pyrodigal"), str(path))
    with open_text(path, newline=None) as f:
        entries = read_fasta(f, path)
    if not entries:
        raise DataFileError(path, "no FASTA record")
    name, genome = entries[0]
    finder = pyrodigal.GeneFinder()
    finder.train(genome.encode())
    records = []
    for i, gene in enumerate(finder.find_genes(genome.encode())):
        if limit is not None and report.read >= limit:
            break
        report.read += 1
        if gene.partial_begin or gene.partial_end:
            report.reject("partial_gene")
            continue
        rec = _pair(report, f"{name.split()[0]}_{i + 1}", gene.sequence(), gene.translate(), "pyrodigal:genome",
                    gene.translation_table)
        if rec is not None:
            records.append(rec)
    report.kept = len(records)
    return Loaded(records, report)


def emboss_dir(path: str | os.PathLike | None = None) -> Path:
    """The EMBOSS `test` folder: argument, $NATURELM_EMBOSS, the system install, then the cache."""
    given = path or os.environ.get(EMBOSS_ENV)
    roots = [Path(given)] if given else [Path("/"), cache_dir("emboss") / "root"]
    for root in roots:
        for cand in (root, root / _EMBOSS_REL):
            if (cand / "embl").is_dir() and (cand / "genbank").is_dir():
                return cand
    raise DataSourceMissing("EMBOSS test databases (emboss-test)", EMBOSS_HINT)


def load_emboss_cds(path: str | os.PathLike | None = None, limit: int | None = None) -> Loaded:
    """Curated CDS features (`/translation` given by the submitter) of the EMBOSS EMBL and GenBank test entries;
    only whole-CDS features (codon_start 1, table 1 or 11, no fuzzy ends) whose DNA translates to `/translation`."""
    from Bio import SeqIO

    folder = emboss_dir(path)
    report = SourceReport("emboss:test-cds", None, str(folder))
    files = [(p, "embl") for p in sorted((folder / "embl").glob("*.dat"))]
    files += [(p, "genbank") for p in sorted((folder / "genbank").glob("*.seq"))]
    records, seen = [], set()
    for file, fmt in files:
        try:
            entries = list(SeqIO.parse(str(file), fmt))
        except (ValueError, AssertionError):
            report.reject(f"unreadable_file:{file.name}")
            continue
        for entry in entries:
            for feat in entry.features:
                if feat.type != "CDS" or "translation" not in feat.qualifiers:
                    continue
                if limit is not None and report.read >= limit:
                    break
                report.read += 1
                q = feat.qualifiers
                table = integer(q.get("transl_table", ["1"])[0])
                if q.get("codon_start", ["1"])[0] != "1" or table not in (1, 11) or "<" in str(feat.location) \
                        or ">" in str(feat.location):
                    report.reject("partial_or_other_code")
                    continue
                try:
                    dna = str(feat.extract(entry.seq))
                except ValueError:
                    report.reject("no_sequence")
                    continue
                rid = f"{entry.id}:{q.get('protein_id', q.get('gene', ['cds']))[0]}"
                _add_once(report, records, seen, _pair(report, rid, dna, q["translation"][0], f"emboss:{file.name}", table))
    report.kept = len(records)
    return Loaded(records, report)
