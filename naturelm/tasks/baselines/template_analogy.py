"""The scoring both template-by-analogy baselines share (RetroSim backwards, ForwardTemplates forwards).

Each neighbour j (found by similarity of the query to a training side) proposes what its rdchiral template makes of
the query; a candidate scores sim(query, neighbour) x sim(candidate, neighbour's other side), the maximum over
neighbours (Coley et al., ACS Cent. Sci. 2017).
"""
from __future__ import annotations

from typing import Callable

from naturelm.data.retrieval import morgan_fp
from naturelm.generate.cancel import Deadline
from naturelm.tasks.baselines.base import Candidate


def propose_by_analogy(query: str, neighbours, templates: list[str], other_fps, ids: list[str], cache: dict,
                       canonical: Callable[[str], str | None], source: str, k: int) -> list[Candidate]:
    """Up to k distinct candidates for `query`, best first: `neighbours` are (index, similarity) pairs, `other_fps`
    the fingerprints of each training reaction's other side, `canonical` maps a raw outcome to a candidate or None.

    Cooperative stop: before each neighbour's template is applied, the call's `Deadline(source)` is checked (the
    server's budget for "retrosim" / "forward-templates", and cancellation of the request), so a call stops within
    one rdchiral run of its budget."""
    from rdkit import DataStructs
    from rdchiral.initialization import rdchiralReactants

    try:
        rct = rdchiralReactants(query)
    except Exception:  # rdchiral cannot prepare some molecules; nothing can be proposed
        return []
    deadline = Deadline(source)
    outcomes: dict[str, list] = {}
    best: dict[str, tuple[float, int]] = {}
    for j, sim in neighbours:
        deadline.check()
        template = templates[j]
        if template not in outcomes:
            outcomes[template] = apply_template(template, rct, cache, canonical)
        for cand, cand_fp in outcomes[template]:
            score = sim * DataStructs.TanimotoSimilarity(cand_fp, other_fps[j])
            if cand not in best or score > best[cand][0]:
                best[cand] = (score, j)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:k]
    return [Candidate(text=c, score=s, source=source, meta={"neighbour": ids[j], "template": templates[j]})
            for c, (s, j) in ranked]


def apply_template(template: str, rct, cache: dict, canonical: Callable[[str], str | None]) -> list[tuple[str, object]]:
    """Canonical outcomes (with fingerprints) of one rdchiral template on prepared molecules; prepared templates are
    kept in `cache` (per process)."""
    from rdchiral.initialization import rdchiralReaction
    from rdchiral.main import rdchiralRun

    if template not in cache:
        try:
            cache[template] = rdchiralReaction(template)
        except Exception:  # an unparsable template proposes nothing
            cache[template] = None
    rxn = cache[template]
    if rxn is None:
        return []
    try:
        raw = rdchiralRun(rxn, rct)
    except Exception:  # rdchiral fails on some template/molecule pairs; that neighbour proposes nothing
        return []
    out = []
    for smiles in dict.fromkeys(raw):
        cand = canonical(smiles)
        if cand is not None:
            out.append((cand, morgan_fp(cand)))
    return out
