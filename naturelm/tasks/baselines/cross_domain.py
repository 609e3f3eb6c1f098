"""Baselines of the cross-domain tasks, run beside the model by `naturelm eval`:

- `ligand_retrieval`: the target's training actives (or, for a target without any, those of the target whose
  pocket shares most 3-mers), most potent first: the nearest known actives.
- `ligand_random`: random training molecules of any target (seeded).
- `biopython`: the genetic code as a tool: Biopython's translation for dna_to_protein; for protein_to_dna,
  ATG + for each residue its most used codon in the build's training genes + TAA.
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from naturelm.data.cross_domain import ACTIVE
from naturelm.errors import ConfigError
from naturelm.tasks.baselines.base import Candidate



class LigandRetrieval:
    name = "ligand_retrieval"

    def __init__(self, data_dir: str | Path | None):
        from naturelm.data.cross_domain import read_affinities

        if data_dir is None:
            raise ConfigError("ligand_retrieval needs --data DIR (the build's measured rows)")
        rows = [r for r in read_affinities(data_dir) if r["split"] == "train" and r["p_affinity"] >= ACTIVE]
        self.actives: dict[str, list[str]] = {}
        for r in sorted(rows, key=lambda r: -r["p_affinity"]):
            self.actives.setdefault(r["gene"], []).append(r["smiles"])
        from naturelm.data.sources.dockstring import pocket_sequences

        self.pockets = pocket_sequences()

    def supports(self, task: str) -> bool:
        return task == "protein_to_molecule"

    def _nearest(self, gene: str | None) -> str | None:
        if gene in self.actives or gene not in self.pockets:
            return gene
        from naturelm.tasks.protein_to_molecule import target_of

        known = {g: s for g, s in self.pockets.items() if g in self.actives}
        return target_of(f"<protein>{self.pockets[gene]}</protein>", known)

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        from naturelm.tasks.protein_to_molecule import target_of

        out = []
        for text in inputs:
            gene = self._nearest(target_of(text, self.pockets))
            out.append([Candidate(s, 0.0, self.name, True, {"from_target": gene})
                        for s in self.actives.get(gene, [])[:k]])
        return out


class RandomLigands:
    name = "ligand_random"

    def __init__(self, data_dir: str | Path | None, seed: int = 0):
        from naturelm.data.cross_domain import read_affinities

        if data_dir is None:
            raise ConfigError("ligand_random needs --data DIR (the build's measured rows)")
        self.pool = sorted({r["smiles"] for r in read_affinities(data_dir) if r["split"] == "train"})
        self.rng = random.Random(seed)

    def supports(self, task: str) -> bool:
        return task == "protein_to_molecule"

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        return [[Candidate(s, 0.0, self.name, True) for s in self.rng.sample(self.pool, min(k, len(self.pool)))]
                for _ in inputs]


def codon_preferences(dnas: list[str]) -> dict[str, str]:
    """Each amino acid's most used codon in these coding sequences (ties: alphabetical), table 11."""
    from Bio.Data import CodonTable

    table = CodonTable.unambiguous_dna_by_id[11].forward_table
    counts: dict[str, Counter] = {}
    for dna in dnas:
        for i in range(0, len(dna) - 2, 3):
            codon = dna[i:i + 3]
            if codon in table:
                counts.setdefault(table[codon], Counter())[codon] += 1
    best = {aa: min(c, key=lambda x: (-c[x], x)) for aa, c in counts.items()}
    for codon, aa in sorted(table.items()):  # residues never seen: their first codon
        best.setdefault(aa, codon)
    return best


class BiopythonTranslator:
    name = "biopython"

    def __init__(self, data_dir: str | Path | None = None):
        import json

        dnas = []
        path = Path(data_dir) / "instructions" / "train.jsonl" if data_dir else None
        if path is not None and path.is_file():
            with open(path) as f:
                dnas = [r["meta"]["dna"] for r in map(json.loads, f) if r.get("task") == "dna_to_protein"]
        self.codons = codon_preferences(dnas)

    def supports(self, task: str) -> bool:
        return task in ("dna_to_protein", "protein_to_dna")

    def back_translate(self, protein: str) -> str:
        return "ATG" + "".join(self.codons[aa] for aa in protein[1:]) + "TAA"

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        from naturelm.tasks.central_dogma import query_entity
        from naturelm.tools.translation import translate_cds

        out = []
        for text in inputs:
            if task == "dna_to_protein":
                answer = translate_cds(query_entity(text, "dna"))
            else:
                protein = query_entity(text, "protein")
                answer = self.back_translate(protein) if protein else None
            out.append([Candidate(answer, 0.0, self.name, True)] if answer else [])
        return out
