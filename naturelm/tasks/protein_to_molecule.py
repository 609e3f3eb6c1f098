"""Target -> ligand: molecules designed for a protein, named by its pocket sequence or by name.

One test example per (target, phrasing kind) of the test records; its meta says the target (`gene`) and whether
the target is held out whole (`holdout` "target") or only its test scaffolds ("scaffold"). References come from
the build's measured rows (naturelm.data.cross_domain.AFFINITY_FILE): the target's training molecules and its
held-out actives (test rows with p_affinity >= ACTIVE).

Per sample slot (`samples` per example; missing samples are invalid): `validity`; `uniqueness` = distinct valid
(target, molecule) / valid; `novelty` = distinct valid molecules whose connectivity (InChIKey first block) is not
among the target's training molecules / distinct valid; `sim_heldout` = mean over valid samples of the highest
Tanimoto (Morgan r=2, 2048 bits) to the target's held-out actives; `oracle_p_affinity` = mean affinity predicted
by the target's oracle over valid samples; `oracle_active` = share of all slots valid and predicted >= ACTIVE.
The oracle (AffinityOracle) is a random forest on Morgan fingerprints fitted on the target's training rows,
retrained deterministically (no pickle); its held-out Spearman and R2 are reported per target and averaged.

AutoDock Vina (the paper's metric) runs through dockstring on a small sample when `$NATURELM_DOCK_SAMPLE` = N > 0:
the first N valid molecules (in example order) of targets with a dockstring receptor are docked (seed 0, one CPU;
needs dockstring and Open Babel's `obabel` 3.1.1, e.g. Debian `openbabel`; about 1-2 minutes per molecule on one
core). `vina_mean` (kcal/mol, lower is better), `vina_n` and `vina_seconds` are reported; molecules that fail to
dock are counted in `vina_failed`.
"""
from __future__ import annotations

import functools
import os
import re
import time

from naturelm.data.cross_domain import ACTIVE
from naturelm.data.splits import connectivity_key
from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.metrics import mean, morgan_fingerprints, validity
from naturelm.tasks.molecule_generation import canonical_molecules



def max_similarity(smiles: list[str], references: list[str]) -> list[float]:
    """Per molecule, the highest Tanimoto to any reference (0.0 without references)."""
    from rdkit import DataStructs

    ref = morgan_fingerprints(references)
    fps = morgan_fingerprints(smiles)
    return [max(DataStructs.BulkTanimotoSimilarity(fp, ref)) if ref else 0.0 for fp in fps]


class AffinityOracle:
    """p_affinity of a molecule for one target: RandomForestRegressor(100 trees, sqrt features, seed 0) on Morgan
    r=2 2048-bit fingerprints, fitted on training rows and scored on held-out rows (Spearman, R2)."""

    def __init__(self, gene: str, train: list[dict], heldout: list[dict]):
        import numpy as np
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.metrics import r2_score

        from naturelm.tasks.metrics import spearman

        self.gene, self.n_train, self.n_heldout = gene, len(train), len(heldout)
        self.model = RandomForestRegressor(n_estimators=100, max_features="sqrt", random_state=0, n_jobs=1)
        self.model.fit(self._x([r["smiles"] for r in train]), np.array([r["p_affinity"] for r in train]))
        if heldout:
            pred = self.predict([r["smiles"] for r in heldout])
            gold = [r["p_affinity"] for r in heldout]
            self.heldout_spearman = spearman(gold, pred)
            self.heldout_r2 = float(r2_score(gold, pred)) if len(heldout) > 1 else None
        else:
            self.heldout_spearman = self.heldout_r2 = None

    @staticmethod
    def _x(smiles: list[str]):
        import numpy as np

        fps = morgan_fingerprints(smiles)
        if len(fps) != len(smiles):
            raise ValueError("AffinityOracle takes valid SMILES only")
        bits = "".join(fp.ToBitString() for fp in fps).encode()
        return (np.frombuffer(bits, dtype=np.uint8) - ord("0")).reshape(len(smiles), -1)

    def predict(self, smiles: list[str]) -> list[float]:
        return [float(v) for v in self.model.predict(self._x(smiles))] if smiles else []

    def card(self) -> dict:
        return {"target": self.gene, "model": "RandomForestRegressor(n_estimators=100, max_features='sqrt', "
                "random_state=0) on Morgan r=2 2048-bit fingerprints", "n_train": self.n_train,
                "n_heldout": self.n_heldout, "heldout_spearman": self.heldout_spearman, "heldout_r2": self.heldout_r2}


def oracle_rows(rows: list[dict], gene: str, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(fit rows, held-out rows) of a target's oracle: its train and test rows; for the held-out target (every row
    test) its rows are split again by scaffold hash (4:1), since the model never trains on that target."""
    mine = [r for r in rows if r["gene"] == gene]
    if any(r["split"] == "train" for r in mine):
        return [r for r in mine if r["split"] == "train"], [r for r in mine if r["split"] == "test"]
    from naturelm.data.cross_domain import hash_split, scaffold_key

    side = {r["smiles"]: hash_split("oracle:" + scaffold_key(r["smiles"]), seed, 0.0, 0.2) for r in mine}
    return [r for r in mine if side[r["smiles"]] == "train"], [r for r in mine if side[r["smiles"]] == "test"]


PACKAGE_ORACLE_ROWS = 1000


@functools.lru_cache(maxsize=8)
def package_oracle(gene: str) -> AffinityOracle:
    """The affinity oracle of a MoleculeACE target fitted on the package's first PACKAGE_ORACLE_ROWS rows per file
    (scaffold hash 4:1, seed 0; about a minute on one core): the check behind `NatureLM.design_ligand`, which has
    no built data dir (DataSourceMissing without MoleculeACE)."""
    from naturelm.data.sources.moleculeace import load_moleculeace

    rows = [{**r, "split": "test"} for r in load_moleculeace({gene}, PACKAGE_ORACLE_ROWS).records]
    return AffinityOracle(gene, *oracle_rows(rows, gene))


def ligand_metrics(samples: list[list[str | None]], genes: list[str], rows: list[dict], oracles: dict) -> dict:
    """The metrics of the module docstring for canonical samples per example (None = invalid)."""
    flags, sims, preds, active = [], [], [], 0
    distinct: set[tuple[str, str]] = set()
    n_valid = 0
    novel: set[tuple[str, str]] = set()
    train_keys: dict[str, set] = {}
    for cands, gene in zip(samples, genes, strict=True):
        if gene not in train_keys:
            train_keys[gene] = {connectivity_key(r["smiles"]) for r in rows if r["gene"] == gene and r["split"] == "train"}
        train = train_keys[gene]
        heldout = [r["smiles"] for r in rows if r["gene"] == gene and r["split"] == "test" and r["p_affinity"] >= ACTIVE]
        valid = [c for c in cands if c]
        flags += [c is not None for c in cands]
        n_valid += len(valid)
        for c in dict.fromkeys(valid):
            distinct.add((gene, c))
            if connectivity_key(c) not in train:
                novel.add((gene, c))
        if valid:
            if heldout:
                sims += max_similarity(valid, heldout)
            p = oracles[gene].predict(valid)
            preds += p
            active += sum(v >= ACTIVE for v in p)
    stats = [o for g, o in oracles.items() if g in set(genes)]
    return {
        "validity": validity(flags),
        "uniqueness": len(distinct) / n_valid if n_valid else 0.0,
        "novelty": len(novel) / len(distinct) if distinct else 0.0,
        "sim_heldout": mean(sims),
        "oracle_p_affinity": mean(preds),
        "oracle_active": active / len(flags) if flags else 0.0,
        "oracle_spearman": mean(o.heldout_spearman for o in stats if o.heldout_spearman is not None),
        "oracle_r2": mean(o.heldout_r2 for o in stats if o.heldout_r2 is not None),
        "n": len(samples),
    }


_GENE_IN_NAME = re.compile(r"\(([A-Za-z0-9-]+)\)\s*\.?\s*$")


def target_of(instruction: str, pockets: dict[str, str]) -> str | None:
    """The gene an instruction is about: the pocket sequence it carries (nearest by shared 3-mers when it is none
    of `pockets`), else a gene named in parentheses at its end."""
    from naturelm.tasks.central_dogma import query_entity

    seq = query_entity(instruction, "protein")
    if seq:
        for gene, s in pockets.items():
            if s == seq:
                return gene
        kmers = lambda x: {x[i:i + 3] for i in range(len(x) - 2)}  # noqa: E731
        q = kmers(seq)
        scored = [(len(q & kmers(s)) / max(1, len(q | kmers(s))), g) for g, s in pockets.items()]
        return max(scored)[1] if scored else None
    m = _GENE_IN_NAME.search(instruction.strip())
    return m.group(1) if m else None


DOCK_ENV = "NATURELM_DOCK_SAMPLE"


def vina_scores(pairs: list[tuple[str, str]]) -> tuple[list[float], int, float]:
    """(Vina scores in kcal/mol, molecules that failed to dock, seconds) of (gene, SMILES) pairs via dockstring
    (DataSourceMissing when dockstring or obabel is absent)."""
    import shutil

    from naturelm.errors import DataSourceMissing

    if shutil.which("obabel") is None:
        raise DataSourceMissing("obabel (Open Babel 3.1.1)", "apt-get install openbabel")
    try:
        from dockstring import load_target
        from dockstring.errors import DockstringError
    except ImportError:
        raise DataSourceMissing("dockstring", "pip install --no-deps dockstring==0.3.4") from None
    t0, scores, failed = time.perf_counter(), [], 0
    for gene, smi in pairs:
        try:
            score, _ = load_target(gene).dock(smi, num_cpus=1, seed=0)
        except DockstringError:
            failed += 1
            continue
        if score is None:
            failed += 1
        else:
            scores.append(float(score))
    return scores, failed, time.perf_counter() - t0


def docking_metrics(samples: list[list[str | None]], genes: list[str], n: int) -> dict:
    """Vina on the first `n` valid molecules of targets that have a dockstring receptor."""
    from naturelm.data.sources.dockstring import targets_dir

    receptors = {p.name[: -len("_target.pdbqt")] for p in targets_dir().glob("*_target.pdbqt")}
    pairs = [(g, c) for cands, g in zip(samples, genes) if g in receptors for c in cands if c][:n]
    scores, failed, seconds = vina_scores(pairs)
    return {"vina_mean": mean(scores), "vina_n": len(scores), "vina_failed": failed, "vina_seconds": round(seconds, 1)}


@register
class ProteinToMolecule(Task):
    name = "protein_to_molecule"
    kind = "sample"
    samples = 10
    fallback_templates = ("Design a molecule that binds to {target}.",)
    headline = ("validity", "novelty", "sim_heldout", "oracle_active")

    def examples(self, data_dir, limit: int | None = None) -> list[Example]:
        """One example per (target, phrasing kind) of the test records, the held-out target first."""
        groups: dict[tuple, Example] = {}
        for e in super().examples(data_dir, None):
            key = (e.meta["gene"], e.meta["by"])
            if key not in groups:
                groups[key] = Example(e.query, e.instruction, {k: e.meta[k] for k in ("gene", "by", "holdout")})
        out = sorted(groups.values(), key=lambda e: (e.meta["holdout"] != "target", e.meta["gene"], e.meta["by"]))
        return out[:limit] if limit else out

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        from naturelm.data.cross_domain import read_affinities

        rows = read_affinities(ctx.data_dir)
        genes = [e.meta["gene"] for e in examples]
        oracles = {g: ctx.cached(f"affinity:{g}", lambda g=g: AffinityOracle(g, *oracle_rows(rows, g)))
                   for g in dict.fromkeys(genes)}
        samples = [canonical_molecules((list(c) + [None] * self.samples)[: self.samples]) for c in texts(preds)]
        out = ligand_metrics(samples, genes, rows, oracles)
        for kind in ("target", "scaffold"):
            idx = [i for i, e in enumerate(examples) if e.meta["holdout"] == kind]
            if idx:
                sub = ligand_metrics([samples[i] for i in idx], [genes[i] for i in idx], rows, oracles)
                out[f"sim_heldout_{kind}"] = sub["sim_heldout"]
                out[f"oracle_active_{kind}"] = sub["oracle_active"]
        n_dock = int(os.environ.get(DOCK_ENV) or 0)
        if n_dock > 0:
            out.update(docking_metrics(samples, genes, n_dock))
        else:
            out["notes"] = [f"protein_to_molecule: AutoDock Vina not run; set {DOCK_ENV}=N to dock N molecules per "
                            "model (dockstring + obabel, about 1-2 min per molecule on one core)"]
        return out
