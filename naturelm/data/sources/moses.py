"""MOSES molecules (PyPI `molsets==0.3.1`, MIT): `moses/dataset/data/{train,test,test_scaffolds}.csv.gz`.

The csv files are read directly; `moses` itself is never imported (it pulls torch and an unbuildable package).
"""
from __future__ import annotations

from naturelm.data.sources.common import Loaded, SourceReport, canon, dist_version, package_file, read_rows

HINT = "pip install --no-deps molsets==0.3.1"
SPLITS = ("train", "test", "test_scaffolds")


def load_moses(split: str = "train", limit: int | None = None) -> Loaded:
    """The first `limit` molecules of a MOSES split as `{"smiles"}` records (canonical RDKit SMILES)."""
    if split not in SPLITS:
        raise ValueError(f"unknown MOSES split {split!r}; expected one of {SPLITS}")
    path = package_file("moses", f"dataset/data/{split}.csv.gz", HINT)
    report = SourceReport(f"moses:{split}", dist_version("molsets"), str(path))
    records = []
    col = None
    for row in read_rows(path, header=False):
        if col is None:  # the header row
            col = row.index("SMILES") if "SMILES" in row else 0
            continue
        if limit is not None and report.read >= limit:
            break
        report.read += 1
        if len(row) <= col or not row[col].strip():
            report.reject("empty_row")
            continue
        smi = canon(row[col].strip())
        if smi is None:
            report.reject("invalid_smiles")
            continue
        records.append({"smiles": smi})
    report.kept = len(records)
    return Loaded(records, report)
