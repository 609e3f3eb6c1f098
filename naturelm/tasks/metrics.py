"""Metric helpers shared by the tasks. Every rate counts invalid and empty outputs as wrong (never dropped)."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence


def ranked_slots(keys: Iterable[str | None]) -> list[str | None]:
    """Candidates in rank order with duplicates of a valid answer removed; an invalid one (None) keeps its slot."""
    out: list[str | None] = []
    seen: set[str] = set()
    for key in keys:
        if key is None:
            out.append(None)
        elif key not in seen:
            seen.add(key)
            out.append(key)
    return out


def topk_exact_match(preds: Sequence[Sequence[str | None]], golds: Sequence[str | None], ks: Iterable[int],
                     canon: Callable[[str], str | None] = lambda s: s) -> dict[str, float]:
    """Share of examples whose gold is among the first k candidates (`ranked_slots` of their canonical forms).

    `canon` maps a candidate to its canonical form or None: invalid or empty candidates never match and keep
    their rank; an example with fewer than k candidates is scored on what it has; a None gold never matches.
    """
    ks = sorted(set(ks))
    hits = {k: 0 for k in ks}
    for cands, gold in zip(preds, golds, strict=True):
        ranked = ranked_slots(canon(c) if c else None for c in cands)
        if gold is None or gold not in ranked:
            continue
        pos = ranked.index(gold)
        for k in ks:
            hits[k] += pos < k
    n = len(golds)
    return {f"top_{k}": hits[k] / n if n else 0.0 for k in ks}


def distinct(items: Iterable[str | None]) -> list[str]:
    """Non-None items in first-seen order, duplicates removed."""
    return list(dict.fromkeys(x for x in items if x is not None))


def validity(flags: Sequence[bool]) -> float:
    """Share of outputs that are valid; empty input -> 0.0."""
    return sum(map(bool, flags)) / len(flags) if flags else 0.0


def uniqueness(valid_canonical: Sequence[str]) -> float:
    """Distinct / total among VALID outputs (MOSES); 0.0 when nothing is valid."""
    return len(set(valid_canonical)) / len(valid_canonical) if valid_canonical else 0.0


def novelty(valid_canonical: Sequence[str], reference: set[str]) -> float:
    """Share of distinct valid outputs absent from the reference (training) set; 0.0 when nothing is valid."""
    unique = set(valid_canonical)
    return len(unique - reference) / len(unique) if unique else 0.0


def formula_elements(formula: str | None) -> set[str] | None:
    """Element symbols of a formula (`LiFePO4` -> {Li, Fe, P, O}); None when empty or unparsable."""
    import warnings

    from pymatgen.core import Composition

    if not formula or not formula.strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(formula)
    except Exception:  # pymatgen raises several types for bad formulas
        return None
    els = {str(e) for e in comp.elements}
    return els or None


def element_fidelity(requested_elements: Iterable[str], formula: str | None) -> tuple[float, float]:
    """(precision, recall) of a material's elements against the requested ones.

    precision = |elements of formula ∩ requested| / |elements of formula| (no element outside the request -> 1),
    recall = |elements of formula ∩ requested| / |requested| (every requested element used -> 1).
    An empty or unparsable formula scores (0.0, 0.0). `requested_elements` must name at least one element.
    """
    from naturelm.errors import ConfigError

    wanted = {str(e).strip() for e in requested_elements if str(e).strip()}
    if not wanted:
        raise ConfigError("element_fidelity: requested_elements is empty (name at least one element)")
    got = formula_elements(formula)
    if not got:
        return 0.0, 0.0
    hit = len(got & wanted)
    return hit / len(got), hit / len(wanted)


def morgan_fingerprints(smiles: Sequence[str], radius: int = 2, n_bits: int = 2048) -> list:
    """RDKit Morgan bit vectors of valid SMILES (invalid ones are skipped)."""
    from rdkit.Chem import rdFingerprintGenerator

    from naturelm.language.codecs import mol_from_smiles

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    mols = (mol_from_smiles(s) for s in smiles)
    return [gen.GetFingerprint(m) for m in mols if m is not None]


# Constrained optimisation (as constrained-optimisation benchmarks do): the optimised molecule keeps Morgan Tanimoto
# >= 0.4 to its input.
SIMILARITY_CONSTRAINT = 0.4


def tanimoto(a: str | None, b: str | None, radius: int = 2, n_bits: int = 2048) -> float | None:
    """Morgan (radius 2, 2048 bits) Tanimoto similarity of two SMILES; None when either is empty or invalid."""
    from rdkit import DataStructs

    if not a or not b:
        return None
    fps = morgan_fingerprints([a, b], radius, n_bits)
    return float(DataStructs.TanimotoSimilarity(fps[0], fps[1])) if len(fps) == 2 else None


def optimisation_summary(wins: Sequence[Sequence[bool]], sims: Sequence[Sequence[float | None]],
                         threshold: float = SIMILARITY_CONSTRAINT) -> dict:
    """Success of an optimisation task per input (any of its samples) and per sample, unconstrained and constrained.

    `wins[i][j]`: sample j of input i meets the task's criterion; `sims[i][j]`: its Tanimoto to input i (None when
    invalid). `success` = share of inputs with a winning sample (the paper's criterion); `success_constrained` =
    share of inputs with a winning sample whose similarity is >= `threshold`; the `_per_sample` rates divide by all
    sample slots; `success_similarity_median` is the median similarity of winning samples (None when none won).
    """
    import statistics

    n = len(wins)
    slots = sum(len(w) for w in wins)
    kept = [[w and s is not None and s >= threshold - 1e-9 for w, s in zip(ws, ss, strict=True)]
            for ws, ss in zip(wins, sims, strict=True)]
    won_sims = [s for ws, ss in zip(wins, sims) for w, s in zip(ws, ss) if w and s is not None]
    return {
        "success": sum(any(w) for w in wins) / n if n else 0.0,
        "success_per_sample": sum(map(sum, wins)) / slots if slots else 0.0,
        "success_constrained": sum(any(k) for k in kept) / n if n else 0.0,
        "success_per_sample_constrained": sum(map(sum, kept)) / slots if slots else 0.0,
        "similarity_constraint": threshold,
        "success_similarity_median": statistics.median(won_sims) if won_sims else None,
    }


def internal_diversity(smiles: Sequence[str], max_n: int = 5000, n_bits: int = 1024) -> float:
    """MOSES IntDiv1: 1 - mean Tanimoto over ALL ordered pairs including self-pairs (Morgan radius 2, 1,024 bits as
    MOSES fingerprints them) of the valid molecules; 0.0 for fewer than two. At most `max_n` molecules are used
    (the first ones). Two molecules at Tanimoto t give 1 - (1 + 1 + 2t) / 4 = (1 - t) / 2."""
    from rdkit import DataStructs

    fps = morgan_fingerprints(list(smiles)[:max_n], n_bits=n_bits)
    if len(fps) < 2:
        return 0.0
    total = sum(sum(DataStructs.BulkTanimotoSimilarity(fp, fps)) for fp in fps)
    return 1.0 - total / (len(fps) ** 2)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation; 0.0 when fewer than 3 pairs or a side is constant (no evidence of order)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    rho = spearmanr(x, y).statistic
    return 0.0 if rho is None or math.isnan(rho) else float(rho)


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve; 0.5 when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return 0.5
    return float(roc_auc_score(labels, scores))


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, None for no values."""
    values = list(values)
    return sum(values) / len(values) if values else None
