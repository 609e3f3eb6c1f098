"""SMILES <-> IUPAC names, scored by InChIKey: a name counts when OPSIN parses it to the gold molecule.

top-k counts the first k distinct STRUCTURES: two names of one molecule take one slot (`ranked_slots` over
InChIKeys), so a synonym never pushes a further structure out of the top k.
"""
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


class _NamingTask(Task):
    """A naming direction: the query is one field of the record's meta; answers are scored by InChIKey."""

    ks = KS
    headline = ("top_1", "top_5")
    meta_field = ""

    def query(self, record: dict) -> str:
        return record["meta"][self.meta_field]

    def inchikeys(self, answers: list[list[str | None]], ctx: Context) -> list[list[str | None]]:
        """InChIKeys of each input's ranked answers (None where an answer names no molecule)."""
        raise NotImplementedError

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return _score_keys(self.inchikeys(texts(preds), ctx), _gold_keys(examples), self.ks)


@register
class SmilesToIupac(_NamingTask):
    name = "smiles_to_iupac"
    domain = "text"
    meta_field = "smiles"
    fallback_templates = ("What is the IUPAC name of {mol}?",)

    def inchikeys(self, answers: list[list[str | None]], ctx: Context) -> list[list[str | None]]:
        from naturelm.tools.opsin import inchikey, names_to_smiles

        names = [ranked_slots(c) for c in answers]  # all names: synonyms merge by structure before top-k cuts
        flat = list(dict.fromkeys(n for ns in names for n in ns if n))
        parsed = dict(zip(flat, names_to_smiles(flat, progress=ctx.progress))) if flat else {}  # one JVM per 20k names
        return [[inchikey(parsed[n]) if n else None for n in ns] for ns in names]


@register
class IupacToSmiles(_NamingTask):
    name = "iupac_to_smiles"
    meta_field = "name"
    fallback_templates = ("Give the SMILES of the molecule named {name}.",)

    def inchikeys(self, answers: list[list[str | None]], ctx: Context) -> list[list[str | None]]:
        from naturelm.tools.opsin import inchikey

        return [[inchikey(s) for s in c] for c in answers]
