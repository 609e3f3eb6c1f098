"""Forward reaction prediction: top-k exact match of the canonical product."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.retrosynthesis import reactant_set, score_ranked


@register
class Forward(Task):
    name = "forward"
    ks = (1, 3)
    fallback_templates = ("What can be produced when these reactants combine? {reactants}",)
    headline = ("top_1", "top_3")

    def query(self, record: dict) -> str:
        from naturelm.language.codecs import try_canonical

        reactants = record["meta"]["reactants"]
        return try_canonical(reactants, reactant_set=True) or reactants

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        golds = [reactant_set(e.meta.get("product")) for e in examples]
        return score_ranked(golds, texts(preds), self.ks)
