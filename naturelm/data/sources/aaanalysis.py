"""Protein benchmarks of PyPI `aaanalysis==1.1.0` (BSD-3): `_data/benchmarks/SEQ_*.tsv` (entry, sequence, label)."""
from __future__ import annotations

from naturelm.data.sources.common import Loaded, alphabet_checker, integer, package_file, read_table

HINT = "pip install --no-deps aaanalysis==1.1.0"
DATASETS = ("SOLUBLE", "CAPSID", "TAIL", "DISULFIDE", "LOCATION", "AMYLO")


def load_aaanalysis(dataset: str = "SOLUBLE", limit: int | None = None) -> Loaded:
    """`{"entry", "sequence", "label"}` records (SOLUBLE: 1 soluble, 0 insoluble); bad rows counted by reason."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown aaanalysis dataset {dataset!r}; expected one of {DATASETS}")
    path = package_file("aaanalysis", f"_data/benchmarks/SEQ_{dataset}.tsv", HINT)
    rows, report = read_table(path, f"aaanalysis:{dataset}", "aaanalysis", limit, delimiter="\t")
    valid = alphabet_checker("protein")
    records = []
    for row in rows:
        seq = (row.get("sequence") or "").strip().upper()
        if not seq or not valid(seq):
            report.reject("invalid_sequence")
            continue
        label = integer(row.get("label"))
        if label is None:
            report.reject("bad_label")
            continue
        records.append({"entry": row.get("entry") or "", "sequence": seq, "label": label})
    report.kept = len(records)
    return Loaded(records, report)
