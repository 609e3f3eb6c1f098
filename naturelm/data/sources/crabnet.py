"""Materials Project compositions with targets from CrabNet's matbench CSVs (PyPI `crabnet==2.0.8`, MIT).

Read directly from `crabnet/data/matbench/*.csv` (columns `formula,target`; formulas are cell contents such
as `K4Mn4O8`). No structure is given, so every material carries `<sgNone>`.
"""
from __future__ import annotations

import math

from naturelm.data.sources.common import Loaded, finite_number, package_file, read_table
from naturelm.errors import EntityError
from naturelm.language.codecs import formula_to_material

HINT = "pip install --no-deps --ignore-requires-python crabnet==2.0.8"
# property -> (file, unit, transform of the stored target)
PROPERTIES = {
    "band_gap": ("data/matbench/mp_gap.csv", "eV", lambda x: x),
    "formation_energy": ("data/matbench/mp_e_form.csv", "eV/atom", lambda x: x),
    "bulk_modulus": ("data/matbench/elasticity_log10(K_VRH).csv", "GPa", lambda x: 10.0 ** x),
}


def load_crabnet(prop: str, limit: int | None = None) -> Loaded:
    """`{"formula", "material", "elements", "property", "value", "unit"}` records for one property.

    Rows whose formula has fractional amounts, unknown elements or over 256 atoms, and rows with a
    non-numeric target, are counted under their reason.
    """
    if prop not in PROPERTIES:
        raise ValueError(f"unknown CrabNet property {prop!r}; expected one of {sorted(PROPERTIES)}")
    rel, unit, transform = PROPERTIES[prop]
    path = package_file("crabnet", rel, HINT)
    rows, report = read_table(path, f"crabnet:{prop}", "crabnet", limit)
    records = []
    for row in rows:
        formula = (row.get("formula") or "").strip()
        target = finite_number(row.get("target"))
        try:
            value = None if target is None else transform(target)
        except OverflowError:  # 10 ** a huge log10 value
            value = None
        if value is None or not math.isfinite(value):
            report.reject("bad_target")
            continue
        try:
            material = formula_to_material(formula)
        except EntityError as exc:
            report.reject("non_integer_amounts" if "non-integer" in exc.reason else
                          "too_many_atoms" if "more than" in exc.reason else "bad_formula")
            continue
        elements = sorted(set(material.split()[:-1]))
        records.append({"formula": formula, "material": material, "elements": elements, "property": prop,
                        "value": value, "unit": unit})
    report.kept = len(records)
    return Loaded(records, report)
