"""Candidate ranking, an inference step (not evaluation): a tool's candidates and the model's own, ordered by the model's mean
log-probability plus a weight x the tool's score. `NatureLM.retrosynthesis/forward(method="ranked")`,
`NatureLM.design_material(method="ranked")` and `naturelm eval --rank` all order candidates here.
"""
from __future__ import annotations

import math

from naturelm.data.instructions import instruction
from naturelm.tasks.base import Example
from naturelm.tasks.baselines.base import Candidate


# Ranked tasks: the instruction field the query fills (None: the query is the task's instruction itself, as
# `naturelm eval` passes it for composition -> material) and the tag the candidates are written in.
RANKED_FIELDS = {"retrosynthesis": ("product", "reactants"), "forward": ("reactants", "product"),
                 "composition_to_material": (None, "material")}


def ranking_prompt(task: str, query: str) -> str:
    """The instruction the model scores a ranked task's candidates under."""
    query_field, _ = RANKED_FIELDS[task]
    return query if query_field is None else instruction(task, **{query_field: query})


def candidate_key(task: str, text: str) -> str | None:
    """The canonical form a candidate of a ranked task is merged under (as `NatureLM.rank` checks the model's
    answers, `naturelm.generate.postprocess.check`); None when it is invalid."""
    from naturelm.generate.postprocess import check

    return check(RANKED_FIELDS[task][1], text)[0] if text else None


def union_scores(model, examples: list[Example], *sources: list[list[Candidate]], task: str = "retrosynthesis"
                 ) -> list[list[tuple]]:
    """Per example, (generation scored by `model.rank`, best source score of the same canonical answer) pairs.

    The source score is the tool's score in [0, 1] (RetroSim's similarity for retrosynthesis, forward templates'
    for forward, `SmactCompositions`' prior for composition -> material); 0 for answers only the model proposed."""
    _, tag = RANKED_FIELDS[task]
    out = []
    for i, ex in enumerate(examples):
        pool = [c for src in sources for c in src[i]]
        ranked = model.rank(ranking_prompt(task, ex.query), pool, tag=tag) if pool else []
        prior: dict[str, float] = {}
        for c in pool:
            if c.source != getattr(model, "name", None) and c.score == c.score:  # NaN-safe
                key = candidate_key(task, c.text)
                if key is not None:
                    prior[key] = max(prior.get(key, 0.0), float(c.score))
        out.append([(g, prior.get(g.canonical, 0.0)) for g in ranked])
    return out


def order_union(scored: list[list[tuple]], prior_weight: float, k: int) -> list[list[Candidate]]:
    """Candidates ordered by model log-probability + prior_weight x source score, best first."""
    out = []
    for row in scored:
        keyed = [(g.score + prior_weight * prior, g) for g, prior in row]
        keyed.sort(key=lambda t: -t[0] if t[0] == t[0] else math.inf)
        out.append([Candidate(g.canonical or g.entity or "", s, getattr(g, "source", ""), g.valid) for s, g in keyed][:k])
    return out


# Default weight of RetroSim's score beside the model's mean log-probability (tuned on USPTO-50k valid for
# NatureLM-tiny with bench/retro_ranking.py); a checkpoint may set its own as `naturelm_rank_weight` in
# generation_config.json (read by NatureLM.load).
RANK_PRIOR_WEIGHT = 3.0


def rank_union(model, examples: list[Example], *sources: list[list[Candidate]], k: int,
               prior_weight: float = 0.0, task: str = "retrosynthesis") -> list[list[Candidate]]:
    """Merge the candidates of several sources and order them with `model.rank` (issue 8)."""
    return order_union(union_scores(model, examples, *sources, task=task), prior_weight, k)
