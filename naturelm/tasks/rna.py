"""Unconditional RNA: validity and ViennaRNA minimum free energy against dinucleotide-shuffled controls.

Each valid sequence is compared with `SHUFFLES` dinucleotide-preserving shuffles of itself (Altschul & Erickson
1985: same dinucleotide counts, first and last nucleotide, uniform over such sequences; seeded), the standard
control for RNA folding (a mononucleotide shuffle breaks stacking dinucleotides and makes any sequence look
structured). Per sequence, difference = MFE - mean MFE of its shuffles (negative: more stable than its controls);
`mfe_difference_mean` / `_std` / `_sem` summarise it over valid sequences; `below_shuffled` is the share of ALL
samples that are valid and fold below the mean of their controls.
"""
from __future__ import annotations

import math
import random
import statistics

from naturelm.errors import DataSourceMissing
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import mean, uniqueness, validity

MAX_LEN = 1024
SHUFFLES = 10


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


def dinucleotide_shuffle(seq: str, rng: random.Random) -> str:
    """A random sequence with the same dinucleotide counts (and first and last letter) as `seq` (Altschul-Erickson).

    The sequence is an Eulerian walk over letters; each letter's outgoing edges are shuffled except a "last edge",
    and the last edges are drawn until they form a tree into the final letter, so the walk uses every edge.
    """
    if len(seq) < 3:
        return seq
    out_edges: dict[str, list[str]] = {}
    for a, b in zip(seq, seq[1:]):
        out_edges.setdefault(a, []).append(b)
    end = seq[-1]
    while True:
        last = {v: rng.choice(out) for v, out in out_edges.items() if v != end}
        if all(_reaches(v, last, end) for v in last):
            break
    walks = {}
    for v, out in out_edges.items():
        rest = list(out)
        if v in last:
            rest.remove(last[v])
        rng.shuffle(rest)
        walks[v] = rest + ([last[v]] if v in last else [])
    pos = dict.fromkeys(walks, 0)
    cur, res = seq[0], [seq[0]]
    for _ in range(len(seq) - 1):
        prev, cur = cur, walks[cur][pos[cur]]
        pos[prev] += 1
        res.append(cur)
    return "".join(res)


def _reaches(v: str, last: dict[str, str], end: str) -> bool:
    seen = set()
    while v != end:
        if v in seen:
            return False
        seen.add(v)
        v = last[v]
    return True


def rna_metrics(seqs: list[str | None], seed: int = 0, shuffles: int = SHUFFLES) -> dict:
    """validity, uniqueness, mean MFE of valid sequences and of their dinucleotide shuffles, the per-sequence
    difference (mean, std, standard error) and the share of all samples folding below their controls."""
    rng = random.Random(seed)
    valid = [s for s in seqs if s]
    gen = [mfe(s) for s in valid]
    ctrl = [[mfe(dinucleotide_shuffle(s, rng)) for _ in range(shuffles)] for s in valid]
    ctrl_means = [statistics.fmean(c) for c in ctrl]
    diff = [g - c for g, c in zip(gen, ctrl_means)]
    std = statistics.stdev(diff) if len(diff) > 1 else None
    return {
        "validity": validity([s is not None for s in seqs]),
        "uniqueness": uniqueness(valid),
        "mfe_mean": mean(gen),
        "mfe_shuffled_mean": mean(ctrl_means),
        "mfe_difference_mean": mean(diff),
        "mfe_difference_std": std,
        "mfe_difference_sem": std / math.sqrt(len(diff)) if std is not None else None,
        "below_shuffled": sum(d < 0 for d in diff) / len(seqs) if seqs else 0.0,
        "shuffles_per_sequence": shuffles,
        "control": "dinucleotide shuffle (Altschul-Erickson)",
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
    headline = ("validity", "uniqueness", "below_shuffled", "mfe_difference_mean")

    def score(self, examples: list[Example], preds, ctx: Context) -> dict:
        return rna_metrics([clean_rna(s) for s in first_entities(preds)])
