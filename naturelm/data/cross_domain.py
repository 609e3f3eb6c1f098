"""Cross-domain pairs for `naturelm data build`: target -> ligand (MoleculeACE x dockstring), gene DNA <-> protein
(pyrodigal, EMBOSS) and RNA-binding protein -> RNA (ATtRACT), with their splits.

Splits:
- ligands: one whole target (`holdout_gene`) is test; the other targets' molecules are split by a seeded hash of
  their Bemis-Murcko scaffold (stereo removed; acyclic molecules by their connectivity, the InChIKey first
  block), the same for every target, so a scaffold and every molecule sharing its connectivity sit in one split.
- genes: the curated EMBOSS CDS and the last GENOME_TEST_FRACTION of the genome's genes (a contiguous slice)
  are test; pyrodigal's other genes are split by a hash of the protein; a pair whose DNA or protein is a test
  sequence never trains.
- RBPs: held out by gene (a seeded hash of the gene name): test proteins are never seen in training.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from naturelm.data.splits import SPLITS, connectivity_key
from naturelm.tools import motifs

ACTIVE = 6.0  # p_affinity (-log10 M) of an active: 1 uM or better
GENOME_TEST_FRACTION = 0.1
RNA_FLANK = (6, 14)  # random nucleotides on each side of a sampled motif site (min, max)
AFFINITY_FILE = "cross_domain/affinities.jsonl"


def hash_split(key: str, seed: int, valid: float, test: float) -> str:
    """A seeded hash of `key` -> train, valid or test."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") / 2**64
    return "test" if u < test else "valid" if u < test + valid else "train"


def scaffold_key(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES of the molecule without stereo; `conn:` + its connectivity key when acyclic."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    from naturelm.language.codecs import mol_from_smiles

    mol = mol_from_smiles(smiles)
    if mol is None:
        return "invalid:" + smiles
    Chem.RemoveStereochemistry(mol)
    scaffold = Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol))
    return scaffold if scaffold else "conn:" + connectivity_key(smiles)


def split_ligands(rows: list[dict], holdout_gene: str | None, seed: int, valid: float, test: float) -> list[dict]:
    """Each measured row with `split` and `holdout` ("target" for the held-out target, "scaffold" for the other
    test rows, "" otherwise) added; keys are computed once per molecule. A row of another split whose molecule
    has the connectivity of a test molecule (e.g. measured on the held-out target too) gets split "removed"."""
    keys = {r["smiles"]: (scaffold_key(r["smiles"]), connectivity_key(r["smiles"])) for r in rows}
    out = []
    for r in rows:
        if r["gene"] == holdout_gene:
            out.append({**r, "split": "test", "holdout": "target"})
            continue
        s = hash_split("scaffold:" + keys[r["smiles"]][0], seed, valid, test)
        out.append({**r, "split": s, "holdout": "scaffold" if s == "test" else ""})
    test_conn = {keys[r["smiles"]][1] for r in out if r["split"] == "test"}
    for r in out:  # a molecule tested on one target never trains on another
        if r["split"] != "test" and keys[r["smiles"]][1] in test_conn:
            r["split"] = "removed"
    return out


def write_affinities(out: Path, rows: list[dict]) -> Path:
    """Every measured (target, molecule, p_affinity, split) row: what the affinity oracle and the ligand baselines
    of `naturelm eval` are trained on (train split only)."""
    path = out / AFFINITY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ("gene", "target_name", "chembl_id", "measure", "smiles", "p_affinity", "split", "holdout")
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in keys}, sort_keys=True) + "\n")
    return path


def read_affinities(data_dir: str | Path) -> list[dict]:
    """The rows `write_affinities` wrote (DataSourceMissing when the build has none)."""
    from naturelm.errors import DataSourceMissing

    path = Path(data_dir) / AFFINITY_FILE
    if not path.is_file():
        raise DataSourceMissing(str(path), "build the data with MoleculeACE installed (pip install --no-deps "
                                           "MoleculeACE==3.0.0 dockstring==0.3.4), then pass --data DIR")
    from naturelm.data.sources.common import read_jsonl_records

    return [rec for _, rec in read_jsonl_records(path)]


def split_genes(curated: list[dict], genome: list[dict], others: list[dict], seed: int, valid: float
                ) -> dict[str, list[dict]]:
    """Gene pairs by split: curated CDS and the genome's last slice are test; the rest by a hash of the protein
    (valid fraction `valid`); a pair sharing its DNA or protein with a test pair is dropped from train/valid."""
    cut = int(len(genome) * (1 - GENOME_TEST_FRACTION))
    out = {s: [] for s in SPLITS}
    out["test"] = list(curated) + list(genome[cut:])
    test_seqs = {p["dna"] for p in out["test"]} | {p["protein"] for p in out["test"]}
    for p in list(genome[:cut]) + list(others):
        if p["dna"] in test_seqs or p["protein"] in test_seqs:
            continue
        out[hash_split("protein:" + p["protein"], seed, valid, 0.0)].append(p)
    return out


def rbp_examples(motif_records: list[dict], pwms: dict, rng: random.Random, per_matrix: int = 1) -> list[dict]:
    """RBP -> RNA examples: for each (gene, matrix), `per_matrix` RNAs = random flank + a site drawn from the matrix
    + random flank, the prompt naming the protein by gene name, gene id or family (drawn at random; family only
    when known). The task judges an answer against every matrix of the named gene, gene id or family."""
    out = []
    for m in motif_records:
        for _ in range(per_matrix):
            by = rng.choice(["gene", "gene_id"] + (["family"] if m["family"] else []))
            site = motifs.sample_site(pwms[m["matrix_id"]], rng)
            left, right = (rng.randint(*RNA_FLANK) for _ in range(2))
            rna = "".join(rng.choices(motifs.ALPHABET, k=left)) + site + "".join(rng.choices(motifs.ALPHABET, k=right))
            out.append({"by": by, "gene": m["gene"], "gene_id": m["gene_id"], "family": m["family"], "rna": rna})
    return out


def matrices_of(motif_records: list[dict], by: str, name: str) -> list[str]:
    """Matrix ids of every ATtRACT record whose `by` field ("gene", "gene_id" or "family") is `name`."""
    return sorted({m["matrix_id"] for m in motif_records if m[by] == name})
