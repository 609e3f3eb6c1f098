"""Candidate ranking, an inference step (not evaluation): a tool's candidates and the model's own, ordered by the model's mean
log-probability plus a weight x the tool's score. `NatureLM.retrosynthesis/forward(method="ranked")`,
`NatureLM.design_material(method="ranked")` and `naturelm eval --rank` all order candidates here.

Forward products may also be scored by the round trip (`round_trip_scores`): the model's mean log-probability of the
reactants as the retrosynthesis answer for the candidate product, mixed in with `retro_weight` (`combined_score`).
"""
from __future__ import annotations

import math

from naturelm.data.instructions import instruction
from naturelm.errors import ConfigError
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


def round_trip_scores(model, queries: list[str], scored: list[list[tuple]]) -> list[list[float]]:
    """Per forward candidate of `union_scores`' rows (same order), the model's mean log-probability of the query's
    reactant set as the answer to the retrosynthesis instruction for that product (`model.rank`, `<reactants>`):
    how well the product leads back to the reactants. -inf where either side cannot be scored."""
    prompts, pools, where = [], [], []
    for i, (query, row) in enumerate(zip(queries, scored)):
        for j, (g, _) in enumerate(row):
            product = g.canonical or g.entity
            if product and query:
                prompts.append(instruction("retrosynthesis", product=product))
                pools.append([query])
                where.append((i, j))
    ranked = model.rank(prompts, pools, tag="reactants") if prompts else []
    score = {ij: (gens[0].score if gens else -math.inf) for ij, gens in zip(where, ranked)}
    return [[score.get((i, j), -math.inf) for j in range(len(row))] for i, row in enumerate(scored)]


def check_retro_weight(retro_weight: float) -> float:
    """The round trip's share, a number in [0, 1]; else ConfigError."""
    ok = isinstance(retro_weight, (int, float)) and not isinstance(retro_weight, bool) and 0.0 <= retro_weight <= 1.0
    if not ok:
        raise ConfigError(f"retro_weight (the round trip's share of forward ranking) must be in [0, 1], "
                          f"not {retro_weight!r}")
    return float(retro_weight)


def combined_score(model_score: float, prior: float, prior_weight: float, retro: float | None = None,
                   retro_weight: float = 0.0) -> float:
    """(1 - retro_weight) x model log-probability + retro_weight x round-trip log-probability + prior_weight x
    source score; a part whose weight is 0 is left out (so an unscorable -inf part it does not weigh is no NaN).
    retro_weight in [0, 1]: 0 is the plain ranking, 1 ranks by the round trip alone (with the prior)."""
    check_retro_weight(retro_weight)
    if retro_weight > 0.0 and retro is None:
        raise ConfigError("retro_weight > 0 needs the round-trip scores (round_trip_scores)")
    score = prior_weight * prior
    if retro_weight < 1.0:
        score += (1.0 - retro_weight) * model_score
    if retro_weight > 0.0:
        score += retro_weight * retro
    return score


def order_union(scored: list[list[tuple]], prior_weight: float, k: int, retro: list[list[float]] | None = None,
                retro_weight: float = 0.0) -> list[list[Candidate]]:
    """Candidates ordered by `combined_score` (model log-probability + prior_weight x source score, and with
    `retro_weight` > 0 the round-trip log-probabilities `retro` of `round_trip_scores`), best first."""
    out = []
    for i, row in enumerate(scored):
        keyed = [(combined_score(g.score, prior, prior_weight, retro[i][j] if retro is not None else None,
                                 retro_weight), g) for j, (g, prior) in enumerate(row)]
        keyed.sort(key=lambda t: -t[0] if t[0] == t[0] else math.inf)
        out.append([Candidate(g.canonical or g.entity or "", s, getattr(g, "source", ""), g.valid) for s, g in keyed][:k])
    return out


# Default weight of RetroSim's score beside the model's mean log-probability (tuned on USPTO-50k valid for
# NatureLM-tiny with bench/retro_ranking.py); a checkpoint may set its own as `naturelm_rank_weight` in
# generation_config.json (read by NatureLM.load).
RANK_PRIOR_WEIGHT = 3.0


def rank_union(model, examples: list[Example], *sources: list[list[Candidate]], k: int,
               prior_weight: float = 0.0, task: str = "retrosynthesis", retro_weight: float = 0.0
               ) -> list[list[Candidate]]:
    """Merge the candidates of several sources and order them with `model.rank` (issue 8); forward with
    `retro_weight` > 0 also by the round trip (`round_trip_scores`)."""
    if retro_weight and task != "forward":
        raise ConfigError(f"retro_weight (the round trip) applies to forward candidates, not {task!r}")
    scored = union_scores(model, examples, *sources, task=task)
    retro = round_trip_scores(model, [e.query for e in examples], scored) if retro_weight else None
    return order_union(scored, prior_weight, k, retro, retro_weight)
