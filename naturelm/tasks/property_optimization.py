"""Basic property optimisation (QED, LogP, HBD): a valid, changed molecule that moves the property by >= delta.

`success` is the paper's criterion (no similarity requirement); `success_constrained` also requires Morgan
Tanimoto >= 0.4 to the input, as constrained-optimisation benchmarks do (`metrics.optimisation_summary`).
"""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.metrics import optimisation_summary, tanimoto, uniqueness
from naturelm.tasks.molecule_generation import canonical_molecules
from naturelm.tasks.property_to_molecule import measure


def improved(before: float, after: float, direction: str, delta: float) -> bool:
    """True when `after` moved from `before` by at least `delta` in `direction` (increase/decrease)."""
    if direction not in ("increase", "decrease"):
        raise ValueError(f"direction must be 'increase' or 'decrease', got {direction!r}")
    change = after - before if direction == "increase" else before - after
    return change >= delta - 1e-9


@register
class PropertyOptimization(Task):
    name = "property_optimization"
    kind = "sample"
    samples = 4
    fallback_templates = ("Given {mol}, propose adjustments that can {direction} its {property} value by at least {delta}.",)
    headline = ("success", "success_constrained", "success_per_sample", "uniqueness")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        from naturelm.language.codecs import try_canonical

        wins, sims, valid = [], [], []
        for ex, cands in zip(examples, texts(preds), strict=True):
            m = ex.meta
            source = try_canonical(m["smiles"])
            before = measure(source, m["property"])
            canon = canonical_molecules((list(cands) + [None] * self.samples)[: self.samples])
            wins.append([c is not None and c != source and before is not None
                         and improved(before, measure(c, m["property"]), m["direction"], float(m["delta"]))
                         for c in canon])
            sims.append([tanimoto(source, c) for c in canon])
            valid += [c for c in canon if c]
        return {**optimisation_summary(wins, sims), "uniqueness": uniqueness(valid), "n": len(examples)}
