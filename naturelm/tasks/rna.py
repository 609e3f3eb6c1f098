"""Unconditional RNA: validity and ViennaRNA minimum free energy against shuffled controls.

Each valid sequence is compared with one shuffle of itself (same length and nucleotide composition, seeded);
`below_shuffled` is the share of ALL samples that are valid and fold more stably than their control.
"""
from __future__ import annotations

import random

from naturelm.errors import DataSourceMissing
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import mean, uniqueness, validity

MAX_LEN = 1024


def clean_rna(seq: str | None) -> str | None:
    """Upper-case ACGU sequence (T read as U), None when empty, longer than MAX_LEN or off-alphabet."""
    if not seq:
        return None
    seq = "".join(seq.split()).upper().replace("T", "U")
    return seq if seq and len(seq) <= MAX_LEN and set(seq) <= set("ACGU") else None


def mfe(seq: str) -> float:
    """ViennaRNA minimum free energy (kcal/mol)."""
    try:
        import RNA
    except ImportError:
        raise DataSourceMissing("ViennaRNA", "pip install viennarna==2.7.2") from None
    return float(RNA.fold(seq)[1])


def shuffled(seq: str, rng: random.Random) -> str:
    """A composition-preserving shuffle."""
    chars = list(seq)
    rng.shuffle(chars)
    return "".join(chars)


def rna_metrics(seqs: list[str | None], seed: int = 0) -> dict:
    """validity, uniqueness, mean MFE of valid sequences and of their shuffles, share folding below the shuffle."""
    rng = random.Random(seed)
    valid = [s for s in seqs if s]
    gen = [mfe(s) for s in valid]
    ctrl = [mfe(shuffled(s, rng)) for s in valid]
    return {
        "validity": validity([s is not None for s in seqs]),
        "uniqueness": uniqueness(valid),
        "mfe_mean": mean(gen),
        "mfe_shuffled_mean": mean(ctrl),
        "below_shuffled": sum(g < c for g, c in zip(gen, ctrl)) / len(seqs) if seqs else 0.0,
        "length_mean": mean(len(s) for s in valid),
        "n": len(seqs),
    }


@register
class RNAGeneration(Task):
    name = "rna_generation"
    domain = "rna"
    kind = "unconditional"
    open_tag = "<rna>"
    default_n = 200
    headline = ("validity", "uniqueness", "below_shuffled")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return rna_metrics([clean_rna(s) for s in first_entities(preds)])
