"""B3DB blood-brain barrier labels (PyPI `qc-b3db==1.1.1`, module `B3DB`, CC0): `B3DB_classification.tsv`."""
from __future__ import annotations

from naturelm.data.sources.common import Loaded, canon, package_file, read_table

HINT = "pip install --no-deps qc-b3db==1.1.1"
_LABELS = {"BBB+": 1, "BBB-": 0}


def load_b3db(limit: int | None = None) -> Loaded:
    """`{"smiles", "label" (1 = BBB+), "name"}` records; unknown labels and bad SMILES are counted."""
    path = package_file("B3DB", "B3DB_classification.tsv", HINT)
    rows, report = read_table(path, "b3db:classification", "qc-b3db", limit, delimiter="\t")
    records = []
    for row in rows:
        label = _LABELS.get((row.get("BBB+/BBB-") or "").strip())
        if label is None:
            report.reject("bad_label")
            continue
        smi = canon((row.get("SMILES") or "").strip()) if (row.get("SMILES") or "").strip() else None
        if smi is None:
            report.reject("invalid_smiles")
            continue
        records.append({"smiles": smi, "label": label, "name": (row.get("IUPAC_name") or "").strip()})
    report.kept = len(records)
    return Loaded(records, report)
