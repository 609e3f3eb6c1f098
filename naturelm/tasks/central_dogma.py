"""The central dogma: gene DNA -> protein (translation) and protein -> gene DNA (back-translation).

dna_to_protein: `exact` = share of answers equal to the gold protein; `per_residue` = mean over examples of
(positions i < len(gold) where answer[i] == gold[i]) / len(gold), invalid answers scoring 0; `verified` = share
of answers equal to Biopython's translation of the input (naturelm.tools.translation.translate_cds), which
equals the gold for every record of the data (the build keeps checked pairs only).
protein_to_dna: an answer is judged by translating it back: `exact` = share whose translation equals the input
protein AND that are complete coding sequences (start .. stop, whole codons); `per_residue` as above on the
translation; `valid_cds` = share of complete coding sequences; `identity_natural` = mean share of positions
equal to the natural gene (how close to the source's codon choices, informational).
"""
from __future__ import annotations

from naturelm.language import find_entities
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.proteins import clean_protein
from naturelm.tools.translation import back_translation_ok, clean_dna, is_cds, translate_cds


def per_residue(pred: str | None, gold: str) -> float:
    """Positions i < len(gold) with pred[i] == gold[i], over len(gold); 0.0 for None or an empty gold."""
    if not pred or not gold:
        return 0.0
    return sum(a == b for a, b in zip(pred, gold)) / len(gold)


def query_entity(instruction: str, domain: str) -> str | None:
    """The first entity of `domain` (dna, protein, rna) tagged in an instruction."""
    for span in find_entities(instruction):
        if span.tag.domain == domain:
            return span.text
    return None


def translation_metrics(answers: list[str | None], dnas: list[str], golds: list[str]) -> dict:
    proteins = [clean_protein(a) for a in answers]
    tool = [translate_cds(d) for d in dnas]
    n = len(golds)
    return {
        "validity": sum(p is not None for p in proteins) / n if n else 0.0,
        "exact": sum(p is not None and p == g for p, g in zip(proteins, golds)) / n if n else 0.0,
        "per_residue": sum(per_residue(p, g) for p, g in zip(proteins, golds)) / n if n else 0.0,
        "verified": sum(p is not None and p == t for p, t in zip(proteins, tool)) / n if n else 0.0,
        "n": n,
    }


def back_translation_metrics(answers: list[str | None], proteins: list[str], natural: list[str]) -> dict:
    dnas = [clean_dna(a) for a in answers]
    back = [translate_cds(d) if d else None for d in dnas]
    n = len(proteins)
    ident = [sum(a == b for a, b in zip(d, g)) / len(g) if d else 0.0 for d, g in zip(dnas, natural)]
    return {
        "validity": sum(d is not None for d in dnas) / n if n else 0.0,
        "exact": sum(back_translation_ok(d, p) for d, p in zip(dnas, proteins)) / n if n else 0.0,
        "per_residue": sum(per_residue(b, p) for b, p in zip(back, proteins)) / n if n else 0.0,
        "valid_cds": sum(is_cds(d) for d in dnas) / n if n else 0.0,
        "identity_natural": sum(ident) / n if n else 0.0,
        "n": n,
    }


@register
class DNAToProtein(Task):
    name = "dna_to_protein"
    domain = "protein"
    kind = "sample"
    samples = 1
    fallback_templates = ("Translate the coding sequence {dna} into its protein sequence.",)
    headline = ("exact", "per_residue")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return translation_metrics(first_entities(preds), [e.meta["dna"] for e in examples],
                                   [e.meta["protein_sequence"] for e in examples])


@register
class ProteinToDNA(Task):
    name = "protein_to_dna"
    domain = "dna"
    kind = "sample"
    samples = 1
    fallback_templates = ("Give a coding DNA sequence for the protein {protein}.",)
    headline = ("exact", "per_residue", "valid_cds")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return back_translation_metrics(first_entities(preds), [e.meta["protein_sequence"] for e in examples],
                                        [e.meta["dna"] for e in examples])
