"""Measured ligand affinities of 30 ChEMBL targets from PyPI `MoleculeACE==3.0.0` (MIT; ChEMBL data CC BY-SA 3.0).

`MoleculeACE/Data/benchmark_data/CHEMBL<id>_{Ki,EC50}.csv`: smiles, exp_mean [nM], y (= -log10 nM), cliff_mol,
split. The wheel carries no target names or sequences: `TARGETS` names each ChEMBL id (the MoleculeACE paper's
table); ten of them have a crystal receptor in dockstring (`naturelm.data.sources.dockstring`).
"""
from __future__ import annotations

import re

from naturelm.data.sources.common import Loaded, SourceReport, canon, dist_version, finite_number, package_file, read_rows

HINT = "pip install --no-deps MoleculeACE==3.0.0"
# ChEMBL target id -> (gene symbol, protein name).
TARGETS = {
    "CHEMBL1862": ("ABL1", "tyrosine-protein kinase ABL1"),
    "CHEMBL1871": ("AR", "androgen receptor"),
    "CHEMBL2034": ("NR3C1", "glucocorticoid receptor"),
    "CHEMBL2047": ("NR1H4", "farnesoid X receptor"),
    "CHEMBL204": ("F2", "thrombin"),
    "CHEMBL2147": ("PIM1", "serine/threonine-protein kinase PIM-1"),
    "CHEMBL214": ("HTR1A", "serotonin 1a (5-HT1a) receptor"),
    "CHEMBL218": ("CNR1", "cannabinoid CB1 receptor"),
    "CHEMBL219": ("DRD4", "dopamine D4 receptor"),
    "CHEMBL228": ("SLC6A4", "serotonin transporter"),
    "CHEMBL231": ("HRH1", "histamine H1 receptor"),
    "CHEMBL233": ("OPRM1", "mu opioid receptor"),
    "CHEMBL234": ("DRD3", "dopamine D3 receptor"),
    "CHEMBL235": ("PPARG", "peroxisome proliferator-activated receptor gamma"),
    "CHEMBL236": ("OPRD1", "delta opioid receptor"),
    "CHEMBL237": ("OPRK1", "kappa opioid receptor"),
    "CHEMBL238": ("SLC6A3", "dopamine transporter"),
    "CHEMBL239": ("PPARA", "peroxisome proliferator-activated receptor alpha"),
    "CHEMBL244": ("F10", "coagulation factor X"),
    "CHEMBL262": ("GSK3B", "glycogen synthase kinase-3 beta"),
    "CHEMBL264": ("HRH3", "histamine H3 receptor"),
    "CHEMBL2835": ("JAK1", "tyrosine-protein kinase JAK1"),
    "CHEMBL287": ("SIGMAR1", "sigma opioid receptor"),
    "CHEMBL2971": ("JAK2", "tyrosine-protein kinase JAK2"),
    "CHEMBL3979": ("PPARD", "peroxisome proliferator-activated receptor delta"),
    "CHEMBL4005": ("PIK3CA", "PI3-kinase p110-alpha subunit"),
    "CHEMBL4203": ("CLK4", "dual specificity protein kinase CLK4"),
    "CHEMBL4616": ("GHSR", "ghrelin receptor"),
    "CHEMBL4792": ("HCRTR2", "orexin receptor 2"),
}
def find_target(text: str) -> tuple[str, str]:
    """(gene, name) of a target given by gene symbol or name (case-insensitive); ConfigError listing the known."""
    from naturelm.errors import ConfigError

    wanted = text.strip().lower()
    for gene, name in TARGETS.values():
        if wanted in (gene.lower(), name.lower()):
            return gene, name
    known = ", ".join(sorted(g for g, _ in TARGETS.values()))
    raise ConfigError(f"unknown target {text!r}; known gene symbols: {known}")


_FILE = re.compile(r"(CHEMBL\d+)_(Ki|EC50)\.csv$")


def benchmark_files() -> list:
    """The 30 benchmark CSVs of the installed package, sorted by name (DataSourceMissing when absent)."""
    folder = package_file("MoleculeACE", "Data/benchmark_data", HINT)
    files = sorted(p for p in folder.iterdir() if _FILE.search(p.name))
    if not files:
        from naturelm.errors import DataSourceMissing

        raise DataSourceMissing(f"{folder}/CHEMBL*_Ki.csv", HINT)
    return files


def load_moleculeace(genes: set[str] | None = None, limit_per_file: int | None = None) -> Loaded:
    """`{"chembl_id", "gene", "target_name", "measure" (Ki | EC50), "smiles" (canonical), "p_affinity"
    (-log10 M), "cliff"}` records of every file (or only the targets whose gene is in `genes`).

    Rows with an unparsable SMILES or a non-numeric value are counted; a molecule measured twice for the same
    target and measure keeps its first row (counted as `duplicate`)."""
    report = SourceReport("moleculeace", dist_version("MoleculeACE"))
    records: list[dict] = []
    for path in benchmark_files():
        chembl, measure = _FILE.search(path.name).groups()
        gene, name = TARGETS.get(chembl, (chembl, chembl))
        if genes is not None and gene not in genes:
            continue
        report.path = str(path.parent)
        seen: set[str] = set()
        for n, row in enumerate(read_rows(path)):
            if limit_per_file is not None and n >= limit_per_file:
                break
            report.read += 1
            smi = canon((row.get("smiles") or "").strip()) if (row.get("smiles") or "").strip() else None
            if smi is None:
                report.reject("invalid_smiles")
                continue
            y = finite_number(row.get("y"))
            if y is None:
                report.reject("bad_value")
                continue
            if smi in seen:
                report.reject("duplicate")
                continue
            seen.add(smi)
            records.append({"chembl_id": chembl, "gene": gene, "target_name": name, "measure": measure,
                            "smiles": smi, "p_affinity": round(9.0 + y, 4), "cliff": row.get("cliff_mol") == "1"})
    report.kept = len(records)
    return Loaded(records, report)
