"""Forward prediction on USPTO-50k: templates alone, the model alone, and template products ranked by the model.

The template tool (naturelm.tasks.baselines.forward_templates, fitted on the training split) proposes up to 10
products per reactant set; the ranked rows order them by `naturelm.tasks.ranking.combined_score`:
(1 - r) x the model's mean log-probability of the product given the reactants + r x the round trip (the model's mean
log-probability of the reactants as the retrosynthesis answer for that product) + w x template score, as
`NatureLM.forward(method="ranked")` does. Rows on the same TEST reactions: `templates`, `model` (its own beams,
`method="model"`), `templates+model (ranked, the checkpoint's weights)` (the w and r in MODEL's generation_config.json
when the run starts: what `forward(method="ranked")` does with it), `templates+model (ranked)` (r = 0, w chosen on
valid: the plain ranking) and
`templates+model (ranked, round trip)` (w and r chosen together on valid over `--weights` x `--retro-weights`),
each chosen by top-1, then top-3, then the smaller r and w, on the first `--valid` VALID reactions only.
`--pool union` ranks what `naturelm eval --model CKPT,templates --rank --tasks forward` ranks instead: the model's
own `--model-beams` beams together with the template products (its `CKPT+templates (ranked)` row).
Reactions: the first `--valid` / `--limit` of USPTO-50k's valid / test split, or with `--data DIR` the forward
records of a `naturelm data build` (DIR/instructions/{valid,test}.jsonl: what `naturelm eval --data DIR` scores).
Top-k exact match of the canonical product; `--limit 0` only tunes on valid. `template_recall_at_10`: how often
the gold product is among the template tool's candidates (the ceiling of every template-ranked row).

Tuning the weights for a checkpoint (valid split only; then use them):
    python bench/forward_ranking.py --model CKPT --limit 0 --valid 200 --write-weight
  `--write-weight` stores the round-trip row's w as `naturelm_forward_rank_weight` and r as
  `naturelm_forward_retro_weight` in CKPT/generation_config.json (what `NatureLM.load` reads: `forward(method="auto")`
  then ranks with them, and so does `naturelm eval --rank`).

    python bench/forward_ranking.py --model checkpoints/naturelm-tiny --data data_build/model-tiny --limit 300 --valid 200
Writes bench/runs/forward_ranking.json (bench/results/ with --update-results, or --out).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py
from results_path import add_output_args, output_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KS = (1, 3, 5)


def top_k(golds: list[str], ranked: list[list[str]]) -> dict:
    from naturelm.tasks.retrosynthesis import score_ranked

    return score_ranked(golds, ranked, KS)


def reactions(split: str, n: int, data: Path | None) -> list[tuple[str, str | None]]:
    """(canonical reactant set, canonical product) of the first n reactions of a split: USPTO-50k's, or the forward
    records of the data build `data` (as `naturelm eval` reads them)."""
    from naturelm.data.sources.uspto50k import load_uspto50k
    from naturelm.tasks.forward import Forward
    from naturelm.tasks.retrosynthesis import reactant_set

    if n <= 0:
        return []
    if data is None:
        return [(r.reactants, r.product) for r in load_uspto50k(split=split).records[:n]]
    path = data / "instructions" / f"{split}.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --data a `naturelm data build` output")
    out = []
    with path.open() as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("task") == "forward":
                out.append((Forward().query(rec), reactant_set(rec["meta"].get("product"))))
                if len(out) == n:
                    break
    return out


def top1_wins(golds: list[str], ours: list[list[str]], theirs: list[list[str]]) -> dict:
    """Reactions one row gets right at top-1 and the other does not (a paired comparison on the same reactions)."""
    first = [[row[0] if row else None for row in rows] for rows in (ours, theirs)]
    return {"wins": sum(a == g != b for g, a, b in zip(golds, *first)),
            "losses": sum(b == g != a for g, a, b in zip(golds, *first))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "naturelm-tiny"))
    parser.add_argument("--data", type=Path, default=None,
                        help="a `naturelm data build` output: its forward records instead of USPTO-50k's first ones")
    parser.add_argument("--limit", type=int, default=200, help="test reactions")
    parser.add_argument("--valid", type=int, default=200, help="valid reactions the weights are chosen on")
    parser.add_argument("--weights", default="0,0.5,1,1.5,2,2.5,3,4,5,8,13,20,1000", help="template weights w")
    parser.add_argument("--retro-weights", default="0,0.25,0.5,0.75,1", help="round-trip shares r in [0, 1]")
    parser.add_argument("--model-beams", type=int, default=5, help="k of the model's own beams (0: skip that row)")
    parser.add_argument("--pool", choices=("templates", "union"), default="templates",
                        help="what the ranked rows order: the template products (NatureLM.forward(method='ranked')) "
                             "or them together with the model's beams (naturelm eval --rank's row)")
    parser.add_argument("--write-weight", action="store_true",
                        help="store the round-trip row's w and r as naturelm_forward_rank_weight and "
                             "naturelm_forward_retro_weight in MODEL/generation_config.json")
    add_output_args(parser)
    a = parser.parse_args()
    a.out = str(output_path(a, "forward_ranking.json"))
    if a.pool == "union" and a.model_beams < 1:
        parser.error("--pool union ranks the model's beams too: give --model-beams >= 1")
    if a.valid < 1:
        parser.error("--valid must be >= 1: the weights are chosen on valid reactions")

    from naturelm.api import (FORWARD_RANK_WEIGHT, FORWARD_RANK_WEIGHT_KEY, FORWARD_RETRO_WEIGHT_KEY, NatureLM,
                              write_rank_weight)
    from naturelm.tasks.ranking import check_retro_weight, order_union, round_trip_scores, union_scores
    from naturelm.tasks.base import Example
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates

    t0 = time.perf_counter()
    tool = ForwardTemplates.from_uspto50k()
    fit_s = time.perf_counter() - t0
    lm = NatureLM.load(a.model)
    checkpoint = (next(w for w in (lm.forward_rank_weight, FORWARD_RANK_WEIGHT) if w is not None),
                  check_retro_weight(lm.forward_retro_weight or 0.0))  # what forward(method="ranked") uses now
    weights = [float(w) for w in a.weights.split(",")]
    shares = [check_retro_weight(float(r)) for r in a.retro_weights.split(",")]
    splits = {"valid": reactions("valid", a.valid, a.data), "test": reactions("test", a.limit, a.data)}
    scored, retro, proposals, beams, wall = {}, {}, {}, {}, {}
    for split, rxns in splits.items():
        if not rxns:
            continue
        queries = [q for q, _ in rxns]
        t = time.perf_counter()
        proposals[split] = tool.predict("forward", queries, 10)
        wall[f"templates_{split}"] = time.perf_counter() - t
        if a.model_beams and (split == "test" or a.pool == "union"):
            t = time.perf_counter()
            beams[split] = lm.predict("forward", queries, a.model_beams)  # what naturelm eval stores for the model
            wall[f"model_beams_{split}"] = time.perf_counter() - t
        pool = [beams[split], proposals[split]] if a.pool == "union" else [proposals[split]]
        t = time.perf_counter()
        scored[split] = union_scores(lm, [Example(q) for q in queries], *pool, task="forward")
        wall[f"model_scoring_{split}"] = time.perf_counter() - t
        t = time.perf_counter()
        retro[split] = round_trip_scores(lm, queries, scored[split])
        wall[f"round_trip_scoring_{split}"] = time.perf_counter() - t
    golds = {s: [g for _, g in rxns] for s, rxns in splits.items()}

    def ranked(split: str, w: float, r: float) -> list[list[str]]:
        return [[c.text for c in row] for row in order_union(scored[split], w, 10, retro[split], r)]

    sweep = {(w, r): top_k(golds["valid"], ranked("valid", w, r)) for w, r in itertools.product(weights, shares)}

    def best(pairs) -> tuple[float, float]:
        return max(pairs, key=lambda p: (sweep[p]["top_1"], sweep[p]["top_3"], -p[1], -p[0]))

    plain = best([p for p in sweep if p[1] == 0.0]) if 0.0 in shares else None
    round_trip = best(list(sweep))
    pool_name = "templates+model" if a.pool == "templates" else "model+templates"
    rows, recall, paired = {}, {}, {}
    for split in ("valid", "test"):
        if splits[split]:
            recall[split] = sum(g in {c.text for c in row} for g, row in zip(golds[split], proposals[split])) / len(
                golds[split])
    if splits["test"]:
        tool_only = [[c.text for c in row] for row in proposals["test"]]
        rows["templates"] = top_k(golds["test"], tool_only)
        if a.model_beams:
            rows["model"] = top_k(golds["test"], [[c.text for c in row] for row in beams["test"]])
        choices = {f"{pool_name} (ranked, the checkpoint's weights)": checkpoint,
                   f"{pool_name} (ranked)": plain, f"{pool_name} (ranked, round trip)": round_trip}
        for name, (w, r) in ((n, p) for n, p in choices.items() if p is not None):
            order = ranked("test", w, r)
            rows[name] = {**top_k(golds["test"], order), "weight": w, "retro_weight": r}
            paired[name] = top1_wins(golds["test"], order, tool_only)
    if a.write_weight:
        write_rank_weight(a.model, FORWARD_RANK_WEIGHT_KEY, round_trip[0])
        write_rank_weight(a.model, FORWARD_RETRO_WEIGHT_KEY, round_trip[1])
    result = {"benchmark": "forward_ranking", "model": a.model,
              "reactions": str(a.data) if a.data else "USPTO-50k (first of each split)",
              "test_reactions": len(splits["test"]), "valid_reactions": len(splits["valid"]), "pool": a.pool,
              "score": "(1 - r) x model mean log-prob of the product + r x round-trip mean log-prob of the reactants "
                       "+ w x template score (naturelm.tasks.ranking.combined_score)",
              "chosen_on_valid": {"ranked": {"weight": plain[0], "retro_weight": plain[1]} if plain else None,
                                  "round_trip": {"weight": round_trip[0], "retro_weight": round_trip[1]}},
              "apply": (f"{FORWARD_RANK_WEIGHT_KEY}: {round_trip[0]}, {FORWARD_RETRO_WEIGHT_KEY}: {round_trip[1]} in "
                        f"{a.model}/generation_config.json" + (" (written)" if a.write_weight else " (--write-weight)")),
              "valid_sweep": {f"w={w:g} r={r:g}": {"top_1": v["top_1"], "top_3": v["top_3"]}
                              for (w, r), v in sweep.items()},
              "test": rows, "test_top1_against_templates": paired,
              "template_recall_at_10": recall, "fit_s": round(fit_s, 1),
              "wall_s": {k: round(v, 1) for k, v in wall.items()},
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                          "note": "shared machine (several agents): wall times are contended"}}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
