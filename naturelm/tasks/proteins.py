"""Proteins: unconditional and text-guided generation.

Valid = non-empty and only the 20 standard amino acids. Diversity = clusters at 50% identity / valid sequences,
clustered as CD-HIT and MMseqs2 (`--cluster-mode 2`) do: greedy incremental, longest sequence first; a sequence
joins the first representative it aligns to with identity >= 0.5 and coverage >= 0.8 of BOTH sequences.
Alignment: local (Smith-Waterman), BLOSUM62, gap open -11, extend -1; identity = identical columns / alignment
columns (gaps inside the alignment count; MMseqs2's default `--seq-id-mode 0`); coverage = aligned span / length.
`diversity_engine` names what computed it: this module's pure-Python implementation (all pairs aligned; the
default: faster than MMseqs2's fixed start-up cost at evaluation sizes of a few hundred sequences) or, with
`engine="mmseqs2"`, the Debian `mmseqs` binary with the same parameters (e-value filter off, sensitivity 7.5; its
k-mer prefilter can miss a distant pair that the all-pairs search aligns).
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from naturelm.errors import DataSourceMissing
from naturelm.tasks.base import Context, Example, Task, first_entities, register
from naturelm.tasks.metrics import uniqueness, validity

STANDARD = frozenset("ACDEFGHIKLMNPQRSTVWY")
MIN_IDENTITY = 0.5
MIN_COVERAGE = 0.8


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
    aligner = Align.PairwiseAligner(mode="local", substitution_matrix=substitution_matrices.load("BLOSUM62"))
    aligner.open_gap_score, aligner.extend_gap_score = -11.0, -1.0
    return aligner


def identity_coverage(a: str, b: str, aligner=None) -> tuple[float, float, float]:
    """(identity, coverage of a, coverage of b) of the best local alignment; (0, 0, 0) when nothing aligns."""
    aligner = aligner or _aligner()
    if aligner.score(a, b) <= 0:
        return 0.0, 0.0, 0.0
    aln = aligner.align(a, b)[0]
    counts = aln.counts()
    columns = counts.identities + counts.mismatches + counts.gaps
    (sa, sb) = aln.aligned
    cov_a = (sa[-1][1] - sa[0][0]) / len(a)
    cov_b = (sb[-1][1] - sb[0][0]) / len(b)
    return counts.identities / columns, cov_a, cov_b


def same_cluster(a: str, b: str, aligner=None, threshold: float = MIN_IDENTITY, coverage: float = MIN_COVERAGE) -> bool:
    """Identity >= threshold and both sequences covered >= coverage by their best local alignment."""
    ident, cov_a, cov_b = identity_coverage(a, b, aligner)
    return ident >= threshold - 1e-9 and cov_a >= coverage - 1e-9 and cov_b >= coverage - 1e-9


def greedy_clusters(seqs: list[str], threshold: float = MIN_IDENTITY, coverage: float = MIN_COVERAGE) -> int:
    """Number of greedy clusters (longest sequences become representatives first; ties in input order)."""
    aligner = _aligner()
    reps: list[str] = []
    for s in sorted(seqs, key=len, reverse=True):
        if not any(same_cluster(s, r, aligner, threshold, coverage) for r in reps):
            reps.append(s)
    return len(reps)


def mmseqs_clusters(seqs: list[str], threshold: float = MIN_IDENTITY, coverage: float = MIN_COVERAGE,
                    binary: str = "mmseqs") -> int:
    """Number of clusters MMseqs2 finds with the same definition (greedy by length, bidirectional coverage)."""
    with tempfile.TemporaryDirectory(prefix="naturelm-mmseqs-") as tmp:
        fasta = Path(tmp) / "in.fasta"
        fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
        cmd = [binary, "easy-cluster", str(fasta), str(Path(tmp) / "out"), str(Path(tmp) / "work"),
               "--min-seq-id", str(threshold), "-c", str(coverage), "--cov-mode", "0", "--cluster-mode", "2",
               "--seq-id-mode", "0", "-e", "inf", "-s", "7.5", "--threads", "1", "-v", "1"]
        subprocess.run(cmd, check=True, capture_output=True)
        reps = {line.split("\t")[0] for line in (Path(tmp) / "out_cluster.tsv").read_text().splitlines() if line}
    return len(reps)


def cluster_count(seqs: list[str], engine: str = "python") -> int:
    """Clusters at 50% identity / 80% coverage: `python` (all pairs aligned; the default) or `mmseqs2`."""
    if engine == "python":
        return greedy_clusters(seqs)
    if engine == "mmseqs2":
        binary = shutil.which("mmseqs")
        if binary is None:
            raise DataSourceMissing("mmseqs", "apt-get install mmseqs2 (or `make setup-system`), or use engine='python'")
        return mmseqs_clusters(seqs, binary=binary) if seqs else 0
    raise ValueError(f"unknown clustering engine {engine!r}; expected 'python' or 'mmseqs2'")


def protein_metrics(seqs: list[str | None], max_cluster: int = 300, engine: str = "python") -> dict:
    """validity, uniqueness, length statistics and 50%-identity cluster diversity (first `max_cluster` valid)."""
    valid = [s for s in seqs if s]
    lengths = [len(s) for s in valid]
    sample = valid[:max_cluster]
    return {
        "validity": validity([s is not None for s in seqs]),
        "uniqueness": uniqueness(valid),
        "diversity": cluster_count(sample, engine) / len(sample) if sample else 0.0,
        "diversity_engine": engine,
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
        """success = the oracle's call matches the prompt's class. Beside it, per class w: `success_w` (the oracle
        calls w when w was asked) and `called_w_when_asked_opposite` (it calls w when the other class was asked);
        `conditioning_gain` = mean over classes of their difference (0 for outputs that ignore the prompt)."""
        seqs = [clean_protein(s) for s in first_entities(preds)]
        oracle = ctx.oracle("soluble")
        probs = oracle.predict(seqs)
        wanted = [e.meta.get("property", "soluble") for e in examples]
        called = [None if p is None else ("soluble" if p > 0.5 else "insoluble" if p < 0.5 else None) for p in probs]
        hits = [c is not None and c == w for c, w in zip(called, wanted, strict=True)]
        out = protein_metrics(seqs)
        out["success"] = sum(hits) / len(hits) if hits else 0.0
        gains = []
        for w, other in (("soluble", "insoluble"), ("insoluble", "soluble")):
            sel = [h for h, x in zip(hits, wanted) if x == w]
            if sel:
                out[f"success_{w}"] = sum(sel) / len(sel)
            opposite = [c == w for c, x in zip(called, wanted) if x == other]
            if opposite:
                out[f"called_{w}_when_asked_opposite"] = sum(opposite) / len(opposite)
            if sel and opposite:
                gains.append(out[f"success_{w}"] - out[f"called_{w}_when_asked_opposite"])
        out["conditioning_gain"] = sum(gains) / len(gains) if len(gains) == 2 else None
        out["oracle_heldout_auroc"] = oracle.heldout_auroc
        return out
