"""Property -> molecule: Spearman(requested, measured) and the share within the paper's tolerance."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.metrics import spearman, validity

# Tolerances of the paper: 0 for counts, 0.05 for QED/FSP3, 5 for TPSA; LogP 0.5 is this project's choice.
TOLERANCE = {"QED": 0.05, "HBA": 0, "HBD": 0, "FSP3": 0.05, "RotBonds": 0, "TPSA": 5.0, "LogP": 0.5}


def _calculators():
    from rdkit.Chem import QED, Crippen, rdMolDescriptors as D

    return {
        "QED": QED.qed, "HBA": D.CalcNumHBA, "HBD": D.CalcNumHBD, "FSP3": D.CalcFractionCSP3,
        "RotBonds": D.CalcNumRotatableBonds, "TPSA": D.CalcTPSA, "LogP": Crippen.MolLogP,
    }


def measure(smiles: str | None, prop: str) -> float | None:
    """RDKit value of a property (QED, HBA, HBD, FSP3, RotBonds, TPSA, LogP); None for an invalid molecule."""
    from naturelm.language.codecs import mol_from_smiles

    calc = _calculators()
    if prop not in calc:
        raise KeyError(f"unknown property {prop!r}; known: {sorted(calc)}")
    mol = mol_from_smiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return float(calc[prop](mol))


@register
class PropertyToMolecule(Task):
    name = "property_to_molecule"
    kind = "sample"
    samples = 10
    fallback_templates = ("Generate a molecule with {property} {target}.",)
    headline = ("validity",)

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        by_prop: dict[str, dict] = {}
        slots_valid = []
        for ex, cands in zip(examples, texts(preds), strict=True):
            prop, target = ex.meta["property"], float(ex.meta["target"])
            acc = by_prop.setdefault(prop, {"req": [], "got": [], "correct": 0, "slots": 0})
            cands = (list(cands) + [None] * self.samples)[: self.samples]  # missing samples count as wrong
            for c in cands:
                value = measure(c, prop)
                acc["slots"] += 1
                slots_valid.append(value is not None)
                if value is None:
                    continue
                acc["req"].append(target)
                acc["got"].append(value)
                acc["correct"] += abs(value - target) <= TOLERANCE[prop] + 1e-9
        out = {"validity": validity(slots_valid), "n": len(examples)}
        for prop, acc in sorted(by_prop.items()):
            out[f"spearman_{prop}"] = spearman(acc["req"], acc["got"])
            out[f"correct_{prop}"] = acc["correct"] / acc["slots"]
        return out
