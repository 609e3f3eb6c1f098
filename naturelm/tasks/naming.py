"""SMILES <-> IUPAC names, scored by InChIKey: a name counts when OPSIN parses it to the gold molecule."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, register, texts
from naturelm.tasks.metrics import ranked_slots, topk_exact_match

KS = (1, 5)


def _gold_keys(examples: list[Example]) -> list[str | None]:
    from naturelm.tools.opsin import inchikey

    return [e.meta.get("inchikey") or inchikey(e.meta.get("smiles")) for e in examples]


def _score_keys(keys: list[list[str | None]], golds: list[str | None], ks: tuple[int, ...]) -> dict:
    """top-k over InChIKeys (None = unparsable/invalid, keeps its rank) and the valid share of top-1."""
    n = len(golds)
    out = topk_exact_match(keys, golds, ks)
    out["valid_top_1"] = sum(bool(k) and k[0] is not None for k in keys) / n if n else 0.0
    out["n"] = n
    return out


@register
class SmilesToIupac(Task):
    name = "smiles_to_iupac"
    domain = "text"
    ks = KS
    fallback_templates = ("What is the IUPAC name of {mol}?",)
    headline = ("top_1", "top_5")

    def query(self, record: dict) -> str:
        return record["meta"]["smiles"]

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        from naturelm.tools.opsin import inchikey, names_to_smiles

        names = [ranked_slots(c)[: max(self.ks)] for c in texts(preds)]
        flat = [n for ns in names for n in ns if n]
        parsed = dict(zip(flat, names_to_smiles(flat, progress=ctx.progress))) if flat else {}  # one JVM per 20k names
        keys = [[inchikey(parsed[n]) if n else None for n in ns] for ns in names]
        return _score_keys(keys, _gold_keys(examples), self.ks)


@register
class IupacToSmiles(Task):
    name = "iupac_to_smiles"
    ks = KS
    fallback_templates = ("Give the SMILES of the molecule named {name}.",)
    headline = ("top_1", "top_5")

    def query(self, record: dict) -> str:
        return record["meta"]["name"]

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        from naturelm.tools.opsin import inchikey

        keys = [[inchikey(s) for s in c] for c in texts(preds)]
        return _score_keys(keys, _gold_keys(examples), self.ks)
