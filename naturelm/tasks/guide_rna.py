"""Guide RNA design: a valid guide is 17-24 nt, occurs in the target DNA (either strand, T/U aware) and is
immediately followed there by an NGG PAM."""
from __future__ import annotations

from dataclasses import dataclass

from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import validity

_COMP = str.maketrans("ACGTN", "TGCAN")
GUIDE_LENGTHS = range(17, 25)


def _dna(seq: str | None) -> str:
    return "".join((seq or "").split()).upper().replace("U", "T")


@dataclass(frozen=True)
class TargetSite:
    """Where a spacer sits in the target: 0-based start on the given strand's own 5'->3' sequence ("+": the
    DNA as given, "-": its reverse complement), and the 3 nt right after it there (the PAM, "" at the end)."""

    position: int
    strand: str
    pam: str

    @property
    def has_pam(self) -> bool:
        """An SpCas9 NGG PAM follows the spacer."""
        return len(self.pam) == 3 and self.pam[1:] == "GG"


def find_target_site(spacer: str | None, dna: str) -> TargetSite | None:
    """The spacer's site in `dna` (either strand, T/U aware): the first one followed by an NGG PAM, else the
    first occurrence without one; None when the spacer occurs on neither strand."""
    g, dna = _dna(spacer), _dna(dna)
    if not g:
        return None
    first = None
    for strand, seq in (("+", dna), ("-", dna.translate(_COMP)[::-1])):
        start = seq.find(g)
        while start != -1:
            site = TargetSite(start, strand, seq[start + len(g): start + len(g) + 3])
            if site.has_pam:
                return site
            first = first or site
            start = seq.find(g, start + 1)
    return first


def valid_guide(guide: str | None, dna: str) -> bool:
    """17-24 nt of ACGT/U, found in `dna` or its reverse complement with NGG right after it."""
    g = _dna(guide)
    if len(g) not in GUIDE_LENGTHS or set(g) - set("ACGT"):
        return False
    site = find_target_site(g, dna)
    return site is not None and site.has_pam


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


def target_spacers(dna: str, lengths: range = GUIDE_LENGTHS) -> frozenset[str]:
    """Every valid guide for `dna`, as RNA: each stretch of `lengths` nt of either strand that is immediately
    followed there by an NGG PAM (what `valid_guide` accepts, listed)."""
    dna = _dna(dna)
    out = set()
    for strand in (dna, dna.translate(_COMP)[::-1]):
        for p in range(min(lengths), len(strand) - 2):
            if strand[p + 1:p + 3] == "GG":
                out.update(strand[p - n:p] for n in lengths if n <= p)
    return frozenset(s.replace("T", "U") for s in out if not set(s) - set("ACGT"))
