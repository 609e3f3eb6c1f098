"""Unconditional molecules: validity, uniqueness, novelty, internal diversity and FCD, as MOSES defines them.

- novelty: share of DISTINCT valid generated molecules (canonical SMILES) absent from a reference. `novelty` is
  against every molecule the model trained on (`Context.training_molecules`: the build's `train_molecules.txt`,
  i.e. every molecule of the training instruction records and pre-training documents; older builds: every molecule
  entity of instructions/train.jsonl); `novelty_moses_train` against MOSES train as MOSES computes it (the
  package's train SMILES as written; 99.9% of them are already canonical for this RDKit);
  `novelty_task_train` against the training answers of this task only (the pre-issue-15 definition).
- internal_diversity: MOSES IntDiv1, Morgan radius 2 at 1,024 bits, all ordered pairs including self-pairs.
- fcd: Fréchet ChemNet Distance (fcd_torch's ChemNet, CPU) of the valid molecules against MOSES test statistics
  (moses/dataset/data/test_stats.npz). FCD shrinks with sample size, so `fcd_reference_same_n` gives the FCD of
  the same number of MOSES test molecules against the same statistics (what a perfect generator scores at this n).
"""
from __future__ import annotations

import functools

from naturelm.errors import DataSourceMissing
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import internal_diversity, novelty, uniqueness, validity

MOSES_HINT = "pip install --no-deps molsets==0.3.1 (MOSES data files)"
FCD_HINT = "pip install fcd_torch==1.0.7 (ships the ChemNet weights)"


def canonical_molecules(cands: list[str | None]) -> list[str | None]:
    """Canonical SMILES per candidate, None when empty or invalid."""
    from naturelm.language.codecs import try_canonical

    return [try_canonical(c) if c else None for c in cands]


def training_molecules(ctx: Context, tasks: tuple[str, ...]) -> set[str] | None:
    """Canonical molecules of the training responses of `tasks` (None when no data dir)."""
    from naturelm.tasks.base import entity_of

    responses = ctx.train_responses(tasks)
    if responses is None:
        return None
    return {c for c in canonical_molecules([entity_of(r) for r in responses]) if c}


@functools.lru_cache(maxsize=1)
def moses_train() -> frozenset[str]:
    """MOSES train SMILES as the package writes them (MOSES's novelty reference)."""
    import gzip

    from naturelm.data.sources.common import package_file

    path = package_file("moses", "dataset/data/train.csv.gz", MOSES_HINT)
    with gzip.open(path, "rt") as f:
        header = f.readline()
        if header.strip() != "SMILES":
            raise DataSourceMissing(str(path), f"expected one SMILES column, found {header.strip()!r}; {MOSES_HINT}")
        return frozenset(line.strip() for line in f if line.strip())


@functools.lru_cache(maxsize=1)
def _fcd_model():
    try:
        from fcd_torch import FCD
    except ImportError:
        raise DataSourceMissing("fcd_torch", FCD_HINT) from None
    return FCD(device="cpu", n_jobs=1)


@functools.lru_cache(maxsize=1)
def moses_test_fcd_stats() -> dict:
    """ChemNet activation mean and covariance of MOSES test (`FCD` entry of test_stats.npz)."""
    import numpy as np

    from naturelm.data.sources.common import package_file

    path = package_file("moses", "dataset/data/test_stats.npz", MOSES_HINT)
    return np.load(path, allow_pickle=True)["stats"].item()["FCD"]


def fcd_to_moses_test(smiles: list[str]) -> float | None:
    """FCD of these molecules against MOSES test statistics; None for fewer than two molecules."""
    if len(smiles) < 2:
        return None
    return float(_fcd_model()(pref=moses_test_fcd_stats(), gen=list(smiles)))


@functools.lru_cache(maxsize=8)
def fcd_reference(n: int) -> float | None:
    """FCD of the first `n` MOSES test molecules against MOSES test statistics (the floor at sample size n)."""
    import gzip

    from naturelm.data.sources.common import package_file

    with gzip.open(package_file("moses", "dataset/data/test.csv.gz", MOSES_HINT), "rt") as f:
        f.readline()
        ref = [line.strip() for _, line in zip(range(n), f)]
    return fcd_to_moses_test(ref)


def generation_metrics(canon: list[str | None], reference: set[str] | None) -> dict:
    """validity / uniqueness / novelty / IntDiv1 over one sample per slot (invalid and empty included in n)."""
    valid = [c for c in canon if c]
    return {
        "validity": validity([c is not None for c in canon]),
        "uniqueness": uniqueness(valid),
        "novelty": novelty(valid, reference) if reference is not None else None,
        "internal_diversity": internal_diversity(valid),
        "n": len(canon),
    }


@register
class MoleculeGeneration(Task):
    name = "molecule_generation"
    kind = "unconditional"
    open_tag = "<mol>"
    default_n = 1000
    headline = ("validity", "uniqueness", "novelty", "internal_diversity")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        canon = canonical_molecules(first_entities(preds))
        valid = [c for c in canon if c]
        out = generation_metrics(canon, ctx.training_molecules())
        notes = [] if out["novelty"] is not None else ["novelty needs --data (training molecules)"]
        task_ref = training_molecules(ctx, (self.name,))
        out["novelty_task_train"] = novelty(valid, task_ref) if task_ref is not None else None
        try:
            out["novelty_moses_train"] = novelty(valid, moses_train())
        except DataSourceMissing as exc:
            out["novelty_moses_train"] = None
            notes.append(f"novelty_moses_train: {exc.hint}")
        try:
            out["fcd"] = fcd_to_moses_test(valid)
            out["fcd_reference_same_n"] = fcd_reference(len(valid)) if out["fcd"] is not None else None
        except DataSourceMissing as exc:
            out["fcd"] = out["fcd_reference_same_n"] = None
            notes.append(f"FCD not computed: {exc.hint}")
        if notes:
            out["notes"] = notes
        return out
