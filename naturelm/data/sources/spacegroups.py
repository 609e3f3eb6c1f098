"""Space groups: crystal structures that give one, and the pyxtal Materials Project space-group prior.

- robocrys==0.2.13 `condense/mineral_db.json.gz`: 180 mineral structures (pymatgen dicts), MIT.
- ase `collections/dcdft.json`: 71 elemental crystals (cell + positions), LGPL.
- pyxtal `database/spg_num_wps_mp.csv`: (space group, atoms in cell, Wyckoff set, count) from Materials Project.
Space groups are found with pymatgen's SpacegroupAnalyzer (spglib, symprec 0.1).
"""
from __future__ import annotations

from collections import Counter

from naturelm.data.sources.common import (Loaded, SourceReport, dist_version, integer, package_file, read_json,
                                          read_table)
from naturelm.errors import DataFileError, EntityError
from naturelm.language.codecs import formula_to_material

SYMPREC = 0.1


def _spacegroup(structure) -> int:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return int(SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_number())


def _record(structure, name: str, source: str, report: SourceReport) -> dict | None:
    try:
        sg = _spacegroup(structure)
    except Exception:  # spglib fails on a few degenerate cells
        report.reject("no_spacegroup")
        return None
    formula = structure.composition.formula.replace(" ", "")
    try:
        material = formula_to_material(formula, sg)
    except EntityError:
        report.reject("bad_formula")
        return None
    return {"formula": formula, "material": material, "spacegroup": sg, "name": name, "source": source,
            "elements": sorted({str(e) for e in structure.composition.elements})}


def load_structures(limit: int | None = None) -> Loaded:
    """`{"formula", "material" (with its <sgN>), "spacegroup", "name", "source", "elements"}` from both sets."""
    from pymatgen.core import Lattice, Structure

    mineral = package_file("robocrys", "condense/mineral_db.json.gz", "pip install --no-deps robocrys==0.2.13")
    dcdft = package_file("ase", "collections/dcdft.json", "pip install ase")
    report = SourceReport("structures:robocrys_minerals+ase_dcdft",
                          f"robocrys {dist_version('robocrys')}, ase {dist_version('ase')}", f"{mineral}; {dcdft}")
    records = []
    db = read_json(mineral)
    if not isinstance(db, dict) or not isinstance(db.get("columns"), list) or not isinstance(db.get("data"), list):
        raise DataFileError(mineral, "expected a JSON object with 'columns' and 'data' lists")
    cols = db["columns"]
    for row in db["data"]:
        if limit is not None and report.read >= limit:
            break
        report.read += 1
        item = dict(zip(cols, row)) if isinstance(row, list) else {}
        try:
            structure = Structure.from_dict(item["structure"])
        except Exception:  # a malformed structure dict
            report.reject("bad_structure")
            continue
        rec = _record(structure, str(item.get("mineral") or ""), "robocrys_mineral_db", report)
        if rec:
            records.append(rec)
    db = read_json(dcdft)
    if not isinstance(db, dict):
        raise DataFileError(dcdft, f"expected a JSON object, got {type(db).__name__}")
    for key in sorted(k for k in db if k.isdigit()):
        if limit is not None and report.read >= limit:
            break
        report.read += 1
        item = db[key] if isinstance(db[key], dict) else {}
        try:
            structure = Structure(Lattice(item["cell"]), item["numbers"], item["positions"], coords_are_cartesian=True)
        except Exception:  # a malformed row
            report.reject("bad_structure")
            continue
        pairs = item.get("key_value_pairs")
        rec = _record(structure, str(pairs.get("name", "") if isinstance(pairs, dict) else ""), "ase_dcdft", report)
        if rec:
            records.append(rec)
    report.kept = len(records)
    return Loaded(records, report)


def load_spacegroup_prior() -> Loaded:
    """`{"n_atoms", "spacegroup", "count"}` records: how often each space group occurs per cell size in MP."""
    path = package_file("pyxtal", "database/spg_num_wps_mp.csv", "pip install --no-deps pyxtal")
    rows, report = read_table(path, "pyxtal:spg_num_wps_mp", "pyxtal")
    counts: Counter = Counter()
    for row in rows:
        spg, n, c = (integer(row.get(k)) for k in ("spg", "n_atoms", "count"))
        if spg is None or n is None or c is None:
            report.reject("bad_row")
            continue
        if not 1 <= spg <= 230:
            report.reject("bad_spacegroup")
            continue
        counts[(n, spg)] += c
    records = [{"n_atoms": n, "spacegroup": s, "count": c} for (n, s), c in sorted(counts.items())]
    report.kept = report.read - sum(report.rejected.values())  # rows kept, summed into `records` per (size, group)
    return Loaded(records, report)


def prior_by_size(prior: list[dict]) -> dict[int, list[tuple[int, int]]]:
    """n_atoms -> [(spacegroup, count)] most frequent first (ties by space group)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for r in prior:
        out.setdefault(r["n_atoms"], []).append((r["spacegroup"], r["count"]))
    return {n: sorted(v, key=lambda t: (-t[1], t[0])) for n, v in out.items()}
