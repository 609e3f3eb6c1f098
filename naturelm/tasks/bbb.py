"""Blood-brain barrier: classification (AUROC of p(Yes)) and optimisation judged by the B3DB oracle.

Optimisation reports the paper's `success` (some sample is a changed molecule the oracle calls BBB+) and
`success_constrained` (that sample also keeps Morgan Tanimoto >= 0.4 to the input), with the oracle's AUROC on a
random and on a scaffold held-out split.

A classifying Predictor returns, per input, a candidate whose `meta["p_yes"]` is p(Yes)/(p(Yes)+p(No));
a candidate without it counts as a hard answer ("Yes" -> 1, "No" -> 0). No usable answer is scored as
fully wrong: p = 0 for a BBB+ molecule, 1 for a BBB- one.
"""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, entity_of, register, texts
from naturelm.tasks.metrics import auroc, optimisation_summary, tanimoto, uniqueness
from naturelm.tasks.molecule_generation import canonical_molecules


def p_yes(cands) -> float | None:
    """p(Yes) of a classifier's answer: meta["p_yes"], else the hard Yes/No of the first candidate, else None."""
    if not cands:
        return None
    first = cands[0]
    if "p_yes" in first.meta and first.meta["p_yes"] is not None:
        return float(first.meta["p_yes"])
    word = (entity_of(first.text) or "").strip().rstrip(".").lower()
    return {"yes": 1.0, "no": 0.0}.get(word)


@register
class BBBClassification(Task):
    name = "bbb_classification"
    kind = "classify"
    fallback_templates = ("Can {mol} traverse the blood-brain barrier?",)
    headline = ("auroc", "accuracy")

    def query(self, record: dict) -> str:
        return record["meta"]["smiles"]

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        labels = [int(e.meta["label"]) for e in examples]
        raw = [p_yes(c) for c in preds]
        probs = [p if p is not None else float(1 - y) for p, y in zip(raw, labels, strict=True)]
        n = len(labels)
        return {"auroc": auroc(labels, probs),
                "accuracy": sum((p >= 0.5) == bool(y) and r is not None for p, y, r in zip(probs, labels, raw)) / n if n else 0.0,
                "answered": sum(r is not None for r in raw) / n if n else 0.0, "n": n}


@register
class BBBOptimization(Task):
    name = "bbb_optimization"
    kind = "sample"
    samples = 4
    fallback_templates = ("Adjust the molecule {mol} to facilitate its passage through the blood-brain barrier.",)
    headline = ("success", "success_constrained", "success_per_sample", "uniqueness")

    def query(self, record: dict) -> str:
        return record["meta"]["smiles"]

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        from naturelm.language.codecs import try_canonical

        oracle = ctx.oracle("bbb")
        sources = [try_canonical(e.meta["smiles"]) for e in examples]
        canon = [canonical_molecules((list(c) + [None] * self.samples)[: self.samples]) for c in texts(preds)]
        changed = [[c if c is not None and c != s else None for c in cs] for cs, s in zip(canon, sources, strict=True)]
        flat = [c for cs in changed for c in cs]
        probs = iter(oracle.predict(flat))
        wins = [[(p := next(probs)) is not None and p >= 0.5 for _ in cs] for cs in changed]
        sims = [[tanimoto(s, c) for c in cs] for cs, s in zip(changed, sources)]
        return {**optimisation_summary(wins, sims),
                "uniqueness": uniqueness([c for cs in canon for c in cs if c]),
                "oracle_heldout_auroc": oracle.heldout_auroc,
                "oracle_heldout_auroc_scaffold": (oracle.info or {}).get("heldout_auroc_scaffold"),
                "n": len(examples)}
