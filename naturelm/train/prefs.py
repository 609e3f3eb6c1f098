"""Preference pairs for DPO from RDKit oracles (paper §3: QED / LogP / donor optimisation).

For a source molecule x from the instruction set, its most similar molecules (Morgan-2 Tanimoto) are
scored with the property oracle: a neighbour that meets the requested change is *chosen*, one that
moves the property the wrong way (or not at all) is *rejected*. The prompt asks for the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Objective:
    """A property oracle, the direction (+1 increase / -1 decrease) and the least change that counts."""

    name: str
    oracle: Callable
    direction: int
    threshold: float
    template: str

    def gain(self, source_value: float, value: float) -> float:
        return self.direction * (value - source_value)


def _qed(mol):
    from rdkit.Chem import QED

    return QED.qed(mol)


def _logp(mol):
    from rdkit.Chem import Crippen

    return Crippen.MolLogP(mol)


def _donors(mol):
    from rdkit.Chem import Lipinski

    return float(Lipinski.NumHDonors(mol))


OBJECTIVES: dict[str, Objective] = {
    "qed": Objective("qed", _qed, +1, 0.1, "Given the molecule <mol>{smiles}</mol>, propose adjustments that can "
                                           "increase its QED value by at least 0.1 while keeping it similar."),
    "logp": Objective("logp", _logp, -1, 1.0, "Given the molecule <mol>{smiles}</mol>, propose adjustments that can "
                                              "decrease its LogP value by at least 1 while keeping it similar."),
    "donors": Objective("donors", _donors, +1, 1.0, "Modify the molecule <mol>{smiles}</mol> to have more hydrogen "
                                                    "bond donors while keeping it similar."),
}


def molecule_pool(records: list[dict], limit: int) -> list[str]:
    """Distinct canonical single-component SMILES in molecule tags (`<mol>`, `<product>`, …) of records, in file order."""
    from naturelm.errors import NatureLMError
    from naturelm.language.codecs.molecule import try_canonical
    from naturelm.language.tags import find_entities

    seen: dict[str, None] = {}
    for rec in records:
        for text in (rec.get("instruction", ""), rec.get("response", "")):
            try:
                spans = find_entities(text)
            except NatureLMError:
                continue
            for span in spans:
                if span.tag.domain != "molecule" or "." in span.text or "*" in span.text:
                    continue
                smi = try_canonical(span.text)
                if smi:
                    seen.setdefault(smi, None)
                    if len(seen) >= limit:
                        return list(seen)
    return list(seen)


def build_pairs(records: list[dict], properties: list[str], neighbours: int = 8, min_similarity: float = 0.4,
                max_pairs: int = 2000, pool_size: int = 20000, seed: int = 0) -> list[dict]:
    """DPO pairs `{"prompt", "chosen", "rejected", "meta"}` verified by the RDKit oracles."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from naturelm.language.codecs import mol_from_smiles

    unknown = [p for p in properties if p not in OBJECTIVES]
    if unknown:
        from naturelm.errors import ConfigError

        raise ConfigError(f"unknown DPO properties {unknown}; choose from {sorted(OBJECTIVES)}")
    pool = molecule_pool(records, pool_size)
    mols = [mol_from_smiles(s) for s in pool]
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(m) for m in mols]
    values = {p: np.array([OBJECTIVES[p].oracle(m) for m in mols]) for p in properties}
    pairs: list[dict] = []
    for i in np.random.default_rng(seed).permutation(len(pool)):
        sims = np.array(DataStructs.BulkTanimotoSimilarity(fps[i], fps))
        sims[i] = -1.0
        near = np.argsort(-sims, kind="stable")[:neighbours]
        near = near[sims[near] >= min_similarity]
        for p in properties:
            obj, v = OBJECTIVES[p], values[p]
            gains = obj.direction * (v[near] - v[i])
            good, bad = near[gains >= obj.threshold], near[gains <= 0]
            if good.size and bad.size and len(pairs) < max_pairs:
                c, r = int(good[0]), int(bad[0])
                pairs.append({
                    "prompt": obj.template.format(smiles=pool[i]),
                    "chosen": f"<mol>{pool[c]}</mol>",
                    "rejected": f"<mol>{pool[r]}</mol>",
                    "meta": {"property": p, "source": pool[i], "gain_chosen": round(float(v[c] - v[i]), 4),
                             "gain_rejected": round(float(v[r] - v[i]), 4),
                             "sim_chosen": round(float(sims[c]), 4), "sim_rejected": round(float(sims[r]), 4)},
                })
        if len(pairs) >= max_pairs:
            break
    return pairs


def meets_objective(property_name: str, source: str, response: str) -> bool:
    """Oracle check of one response: a valid `<mol>` whose property moved as requested. Invalid/empty = False."""
    from naturelm.errors import NatureLMError
    from naturelm.language.codecs import mol_from_smiles
    from naturelm.language.tags import find_entities

    obj = OBJECTIVES[property_name]
    try:
        spans = [s for s in find_entities(response) if s.tag.name == "mol"]
    except NatureLMError:
        return False
    src = mol_from_smiles(source)
    mol = mol_from_smiles(spans[0].text) if spans and spans[0].text else None
    if src is None or mol is None:
        return False
    return obj.gain(obj.oracle(src), obj.oracle(mol)) >= obj.threshold
