"""Proteins: unconditional and text-guided generation.

Valid = non-empty and only the 20 standard amino acids. Diversity = clusters at 50% identity / valid sequences,
with greedy clustering (longest first; a sequence joins the first representative it shares >= 50% identity with,
identity = identical aligned residues / length of the shorter sequence, BLOSUM62 global alignment, free end gaps).
"""
from __future__ import annotations

import statistics

from naturelm.errors import DataSourceMissing
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import uniqueness, validity

STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")


def clean_protein(seq: str | None) -> str | None:
    """Upper-case sequence without whitespace, None unless non-empty and all standard amino acids."""
    if not seq:
        return None
    seq = "".join(seq.split()).upper()
    return seq if seq and set(seq) <= STANDARD else None


def _aligner():
    try:
        from Bio import Align
        from Bio.Align import substitution_matrices
    except ImportError:
        raise DataSourceMissing("biopython", "pip install biopython (protein identity clustering)") from None
    aligner = Align.PairwiseAligner(mode="global", substitution_matrix=substitution_matrices.load("BLOSUM62"))
    aligner.open_gap_score, aligner.extend_gap_score = -10.0, -0.5
    aligner.end_gap_score = 0.0
    return aligner


def identity(a: str, b: str, aligner=None) -> float:
    """Identical aligned residues / length of the shorter sequence."""
    aligner = aligner or _aligner()
    return aligner.align(a, b)[0].counts().identities / min(len(a), len(b))


def greedy_clusters(seqs: list[str], threshold: float = 0.5) -> int:
    """Number of greedy clusters at `threshold` identity (longest sequences become representatives first)."""
    aligner = _aligner()
    reps: list[str] = []
    for s in sorted(seqs, key=len, reverse=True):
        if not any(identity(s, r, aligner) >= threshold for r in reps):
            reps.append(s)
    return len(reps)


def protein_metrics(seqs: list[str | None], max_cluster: int = 300) -> dict:
    """validity, uniqueness, length statistics and 50%-identity cluster diversity (first `max_cluster` valid)."""
    valid = [s for s in seqs if s]
    lengths = [len(s) for s in valid]
    sample = valid[:max_cluster]
    return {
        "validity": validity([s is not None for s in seqs]),
        "uniqueness": uniqueness(valid),
        "diversity": greedy_clusters(sample) / len(sample) if sample else 0.0,
        "length_mean": statistics.fmean(lengths) if lengths else None,
        "length_median": statistics.median(lengths) if lengths else None,
        "length_std": statistics.pstdev(lengths) if lengths else None,
        "n": len(seqs),
    }


@register
class ProteinGeneration(Task):
    name = "protein_generation"
    domain = "protein"
    kind = "unconditional"
    open_tag = "<protein>"
    default_n = 100
    headline = ("validity", "uniqueness", "diversity")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return protein_metrics([clean_protein(s) for s in first_entities(preds)])


@register
class TextToProtein(Task):
    """`meta.property` is `soluble` or `insoluble`; success = the soluble oracle agrees (p > 0.5 or p < 0.5)."""

    name = "text_to_protein"
    domain = "protein"
    kind = "sample"
    samples = 1
    fallback_templates = ("Generate a {property} protein sequence.",)
    headline = ("validity", "success", "diversity")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        seqs = [clean_protein(s) for s in first_entities(preds)]
        oracle = ctx.oracle("soluble")
        probs = oracle.predict(seqs)
        wanted = [e.meta.get("property", "soluble") for e in examples]
        hits = [p is not None and (p > 0.5 if w == "soluble" else p < 0.5) for p, w in zip(probs, wanted, strict=True)]
        out = protein_metrics(seqs)
        out["success"] = sum(hits) / len(hits) if hits else 0.0
        for w in ("soluble", "insoluble"):
            sel = [h for h, x in zip(hits, wanted) if x == w]
            if sel:
                out[f"success_{w}"] = sum(sel) / len(sel)
        out["oracle_heldout_auroc"] = oracle.heldout_auroc
        return out
