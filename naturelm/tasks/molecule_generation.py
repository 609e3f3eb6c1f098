"""Unconditional molecules: validity, uniqueness, novelty vs training molecules, internal diversity (MOSES)."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import internal_diversity, novelty, uniqueness, validity

FCD_NOTE = ("FCD not computed: MOSES test_stats.npz holds ChemNet activation statistics, and comparing generated "
            "molecules to them needs the ChemNet weights, which this project does not ship or download.")


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
        out = generation_metrics(canon, training_molecules(ctx, (self.name,)))
        out["fcd"] = None
        out["notes"] = [FCD_NOTE] + ([] if out["novelty"] is not None else ["novelty needs --data (training molecules)"])
        return out
