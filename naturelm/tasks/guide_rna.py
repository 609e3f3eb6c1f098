"""Guide RNA design: a valid guide is 17-24 nt, occurs in the target DNA (either strand, T/U aware) and is
immediately followed there by an NGG PAM."""
from __future__ import annotations

from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import validity

_COMP = str.maketrans("ACGTN", "TGCAN")


def _dna(seq: str | None) -> str:
    return "".join((seq or "").split()).upper().replace("U", "T")


def valid_guide(guide: str | None, dna: str) -> bool:
    """17-24 nt of ACGT/U, found in `dna` or its reverse complement with NGG right after it."""
    g, dna = _dna(guide), _dna(dna)
    if not 17 <= len(g) <= 24 or set(g) - set("ACGT"):
        return False
    for strand in (dna, dna.translate(_COMP)[::-1]):
        start = strand.find(g)
        while start != -1:
            pam = strand[start + len(g): start + len(g) + 3]
            if len(pam) == 3 and pam[1:] == "GG":
                return True
            start = strand.find(g, start + 1)
    return False


@register
class GuideRNA(Task):
    name = "guide_rna"
    domain = "rna"
    kind = "sample"
    samples = 1
    fallback_templates = ("Generate a guide RNA for targeting the DNA sequence {dna}",)
    headline = ("validity", "spacer_match")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        firsts = first_entities(preds)
        ok = [valid_guide(g, e.meta["dna"]) for g, e in zip(firsts, examples, strict=True)]
        match = [g is not None and _dna(g) == _dna(e.meta.get("spacer")) for g, e in zip(firsts, examples)]
        return {"validity": validity(ok), "spacer_match": validity(match), "n": len(examples)}
