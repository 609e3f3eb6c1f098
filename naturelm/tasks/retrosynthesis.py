"""Single-step retrosynthesis on USPTO-50k: top-k exact match of canonical, sorted reactant sets."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.metrics import distinct, topk_exact_match


def reactant_set(smiles: str | None) -> str | None:
    """Canonical sorted reactant set (atom maps stripped), None when invalid."""
    from naturelm.language.codecs import try_canonical

    return try_canonical(smiles, reactant_set=True) if smiles else None


def score_ranked(golds: list[str | None], preds: list[list[str | None]], ks: tuple[int, ...]) -> dict:
    """top-k over canonical reactant sets, plus the share of valid top-1 answers and mean distinct candidates."""
    canon = [[reactant_set(c) for c in cands] for cands in preds]
    out = topk_exact_match(canon, golds, ks)
    n = len(golds)
    out["valid_top_1"] = sum(bool(c) and c[0] is not None for c in canon) / n if n else 0.0
    out["mean_distinct"] = sum(len(distinct(c)) for c in canon) / n if n else 0.0
    out["n"] = n
    return out


@register
class Retrosynthesis(Task):
    name = "retrosynthesis"
    ks = (1, 3, 5, 10)
    fallback_templates = ("Please suggest possible reactants for the given product {product}",)
    headline = ("top_1", "top_3", "top_5", "top_10")

    def query(self, record: dict) -> str:
        """The product SMILES with atom maps stripped (never the mapped one)."""
        from naturelm.language.codecs import try_canonical

        product = record["meta"]["product"]
        return try_canonical(product) or product

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        golds = [reactant_set(e.meta.get("reactants")) for e in examples]
        return score_ranked(golds, texts(preds), self.ks)


@register
class RetrosynthesisRAG(Retrosynthesis):
    """Same test reactions and metric; the model builds the retrieval prompt itself from the product."""

    name = "retrosynthesis_rag"
    fallback_templates = ("Similar reactions: {neighbours}. Please suggest possible reactants for the given product {product}",)
