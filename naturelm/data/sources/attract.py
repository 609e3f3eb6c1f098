"""RNA-binding protein motifs of ATtRACT, shipped in PyPI `concise==0.6.9` (`--no-deps`; package MIT, the
ATtRACT licence is not stated): `concise/resources/attract_metadata.txt` (Gene_name, Gene_id, Mutated, Organism,
Motif, Len, Experiment_description, Database, Pubmed, Experiment_description, Family, Matrix_id, Score) and
`attract_pwm.txt` (1,583 position weight matrices, columns A C G U).

There are no protein sequences: a protein is known by its gene name, gene id and RNA-binding domain family.
Sequence-level protein -> RNA pairs (complexes, CLIP peaks) are not available offline.
"""
from __future__ import annotations

from naturelm.data.sources.common import (Loaded, SourceReport, dist_version, finite_number, guarded_reads,
                                          open_text, package_file, read_rows)
from naturelm.errors import DataFileError

HINT = "pip install --no-deps concise==0.6.9"
PWM_FILE, META_FILE = "resources/attract_pwm.txt", "resources/attract_metadata.txt"


def read_pwms(lines, path=None) -> dict[str, list[list[float]]]:
    """`>id length` headers followed by rows of four probabilities (A, C, G, U), by matrix id.

    DataFileError naming the file and line for a header without an id, a row that is not finite numbers, and
    unreadable bytes (`guarded_reads`)."""
    where = path if path is not None else getattr(lines, "name", "<pwm>")
    out: dict[str, list[list[float]]] = {}
    current: list[list[float]] | None = None
    number = 0
    for number, line in guarded_reads(enumerate(lines, 1), where, lambda: number):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            if not line[1:].split():
                raise DataFileError(where, "matrix header without an id", number)
            current = out.setdefault(line[1:].split()[0], [])
        elif current is not None:
            row = [finite_number(x) for x in line.split()]
            if any(x is None for x in row):
                raise DataFileError(where, f"matrix row is not finite numbers: {line[:40]!r}", number)
            current.append(row)
    return out


def load_attract_pwms() -> dict[str, list[list[float]]]:
    """Every ATtRACT matrix (rows of A, C, G, U probabilities) by matrix id."""
    path = package_file("concise", PWM_FILE, HINT)
    with open_text(path, newline=None) as f:
        return read_pwms(f, path)


def load_attract(limit: int | None = None) -> Loaded:
    """One `{"gene", "gene_id", "organism", "family", "motif", "matrix_id", "experiment"}` record per wild-type
    (gene, matrix) pair whose matrix is in the PWM file; mutated proteins and unknown matrices are counted."""
    path = package_file("concise", META_FILE, HINT)
    pwms = load_attract_pwms()
    report = SourceReport("concise:attract", dist_version("concise"), str(path))
    records, seen = [], set()
    rows = read_rows(path, "\t", header=False)
    next(rows, None)  # the header
    for row in rows:
        if limit is not None and report.read >= limit:
            break
        report.read += 1
        if len(row) < 12:
            report.reject("short_row")
            continue
        gene, gene_id, mutated, organism, motif = (x.strip() for x in row[:5])
        family, matrix = row[10].strip(), row[11].strip()
        if mutated != "no":
            report.reject("mutated_protein")
            continue
        if matrix not in pwms or not pwms[matrix] or any(len(r) != 4 for r in pwms[matrix]):
            report.reject("no_matrix")
            continue
        if (gene, matrix) in seen:
            report.reject("duplicate")
            continue
        seen.add((gene, matrix))
        records.append({"gene": gene, "gene_id": gene_id, "organism": organism,
                        "family": "" if family == "N/A" else family, "motif": motif.upper().replace("T", "U"),
                        "matrix_id": matrix, "experiment": row[6].strip()})
    report.kept = len(records)
    return Loaded(records, report)
