"""RNA-binding protein -> RNA: does the answer carry a binding site of the named protein?

The protein is named by gene, gene id or family (`meta.by`, `meta.rbp`); its ATtRACT matrices
(naturelm.data.cross_domain.matrices_of) judge the answer. For one RNA and one matrix set:
`best` = the highest log2-odds site score over every window and matrix (naturelm.tools.motifs, uniform
background); `control` = the mean `best` of SHUFFLES seeded dinucleotide shuffles (naturelm.tasks.rna) of the same RNA;
`site` = some matrix has a window scoring above 0 and >= SITE_FRACTION x its consensus score.
Metrics: `validity`, `above_shuffled` (share of all answers valid with best > control), `site_found` (share of
all answers with a site), `logodds_mean` / `logodds_shuffled_mean` (over valid answers).
"""
from __future__ import annotations

import functools
import random

from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import mean, validity
from naturelm.tasks.rna import SHUFFLES, clean_rna, dinucleotide_shuffle
from naturelm.tools import motifs

SITE_FRACTION = 0.75


@functools.lru_cache(maxsize=1)
def attract():
    """(ATtRACT motif records, matrices by id) from the concise package (DataSourceMissing when absent)."""
    from naturelm.data.sources.attract import load_attract, load_attract_pwms

    return load_attract().records, load_attract_pwms()


@functools.lru_cache(maxsize=1024)
def motif_set(by: str, name: str) -> motifs.MotifSet:
    """The ATtRACT matrices of a protein named by gene, gene id or family, stacked for scoring."""
    from naturelm.data.cross_domain import matrices_of

    records, pwms = attract()
    ids = matrices_of(records, by, name)
    return motifs.MotifSet([pwms[m] for m in ids], ids)


def motif_metrics(answers: list[str | None], motif_sets: list[motifs.MotifSet], seed: int = 0) -> dict:
    """The metrics of the module docstring; `motif_sets[i]` holds the matrices of example i's protein."""
    rng = random.Random(seed)
    rnas = [clean_rna(a) for a in answers]
    best, ctrl, above, sites = [], [], 0, 0
    for rna, mset in zip(rnas, motif_sets, strict=True):
        if rna is None or not len(mset):
            continue
        b = mset.best(rna)
        c = sum(mset.best(dinucleotide_shuffle(rna, rng)) for _ in range(SHUFFLES)) / SHUFFLES
        if b == float("-inf"):
            continue
        best.append(b)
        ctrl.append(c)
        above += b > c
        sites += mset.has_site(rna, SITE_FRACTION)
    n = len(answers)
    return {"validity": validity([r is not None for r in rnas]), "above_shuffled": above / n if n else 0.0,
            "site_found": sites / n if n else 0.0, "logodds_mean": mean(best), "logodds_shuffled_mean": mean(ctrl),
            "n": n}


@register
class ProteinToRNA(Task):
    name = "protein_to_rna"
    domain = "rna"
    kind = "sample"
    samples = 1
    fallback_templates = ("Generate an RNA sequence that is bound by {rbp}.",)
    headline = ("validity", "above_shuffled", "site_found")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        sets = [motif_set(e.meta["by"], e.meta["rbp"]) for e in examples]
        out = motif_metrics(first_entities(preds), sets)
        out["notes"] = ["protein_to_rna: training RNAs are synthetic (ATtRACT sites in random flanks); "
                        "sequence-level protein-RNA pairs are not available offline"]
        return out
