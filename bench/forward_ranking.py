"""Forward prediction on USPTO-50k: templates alone, the model alone, and template products ranked by the model.

The template tool (naturelm.tasks.baselines.forward_templates, fitted on the training split) proposes up to 10
products per reactant set; the ranked row orders them by the model's mean log-probability + w x template score
(`NatureLM.forward(method="ranked")`), with w chosen on the first `--valid` VALID reactions from `--weights`.
`--pool union` ranks what `naturelm eval --model CKPT,templates --rank --tasks forward` ranks instead: the model's
own `--model-beams` beams together with the template products (its `CKPT+templates (ranked)` row).
The model alone is its own beam search (`method="model"`). Top-k exact match of the canonical product on the
first `--limit` TEST reactions, all rows on the same reactions; `--limit 0` only tunes w on valid.

Tuning the weight for a checkpoint (valid split only; then use it):
    python bench/forward_ranking.py --model CKPT --limit 0 --valid 100 --pool union --model-beams 5
    naturelm eval --model CKPT,templates --rank --tasks forward --forward-rank-weight W ...
  or `--write-weight`, which stores W as `naturelm_forward_rank_weight` in CKPT/generation_config.json (what
  `NatureLM.load` reads: `forward(method="auto")` then ranks with it, and so does `naturelm eval --rank`).

    python bench/forward_ranking.py --model checkpoints/naturelm-tiny --limit 200 --valid 100
Writes bench/runs/forward_ranking.json (bench/results/ with --update-results, or --out).
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "naturelm-tiny"))
    parser.add_argument("--limit", type=int, default=200, help="test reactions")
    parser.add_argument("--valid", type=int, default=100, help="valid reactions the weight is chosen on")
    parser.add_argument("--weights", default="0,0.5,1,2,3,5,8,1000")
    parser.add_argument("--model-beams", type=int, default=5, help="k of the model's own beams (0: skip that row)")
    parser.add_argument("--pool", choices=("templates", "union"), default="templates",
                        help="what the ranked row orders: the template products (NatureLM.forward(method='ranked')) "
                             "or them together with the model's beams (naturelm eval --rank's row)")
    parser.add_argument("--write-weight", action="store_true",
                        help="store the chosen weight as naturelm_forward_rank_weight in MODEL/generation_config.json")
    add_output_args(parser)
    a = parser.parse_args()
    a.out = str(output_path(a, "forward_ranking.json"))
    if a.pool == "union" and a.model_beams < 1:
        parser.error("--pool union ranks the model's beams too: give --model-beams >= 1")

    from naturelm.api import FORWARD_RANK_WEIGHT_KEY, NatureLM, write_rank_weight
    from naturelm.data.sources.uspto50k import load_uspto50k
    from naturelm.tasks.ranking import order_union, union_scores
    from naturelm.tasks.base import Example
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates

    t0 = time.perf_counter()
    tool = ForwardTemplates.from_uspto50k()
    fit_s = time.perf_counter() - t0
    lm = NatureLM.load(a.model)
    weights = [float(w) for w in a.weights.split(",")]
    splits = {"valid": load_uspto50k(split="valid").records[:a.valid],
              "test": load_uspto50k(split="test").records[:a.limit]}
    scored, proposals, beams, wall = {}, {}, {}, {}
    for split, rxns in splits.items():
        if not rxns:
            continue
        queries = [r.reactants for r in rxns]
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
    golds = {s: [r.product for r in rxns] for s, rxns in splits.items()}
    sweep = {w: top_k(golds["valid"], [[c.text for c in row] for row in order_union(scored["valid"], w, 10)])
             for w in weights}
    best = max(weights, key=lambda w: (sweep[w]["top_1"], sweep[w]["top_3"], -w))
    ranked_row = "templates+model (ranked)" if a.pool == "templates" else "model+templates (ranked, union)"
    rows, recall = {}, None
    if splits["test"]:
        rows = {"templates": top_k(golds["test"], [[c.text for c in row] for row in proposals["test"]]),
                ranked_row: top_k(golds["test"], [[c.text for c in row] for row in order_union(scored["test"], best, 10)])}
        if a.model_beams:
            rows["model"] = top_k(golds["test"], [[c.text for c in row] for row in beams["test"]])
        recall = sum(g in {c.text for c in row} for g, row in zip(golds["test"], proposals["test"])) / len(golds["test"])
    if a.write_weight:
        write_rank_weight(a.model, FORWARD_RANK_WEIGHT_KEY, best)
    result = {"benchmark": "forward_ranking", "model": a.model, "test_reactions": len(splits["test"]),
              "valid_reactions": len(splits["valid"]), "weight": best, "pool": a.pool,
              "valid_sweep_top3": {str(w): v["top_3"] for w, v in sweep.items()},
              "apply": (f"naturelm eval --model {a.model},templates --rank --tasks forward --forward-rank-weight {best}"
                        f", or {FORWARD_RANK_WEIGHT_KEY}: {best} in {a.model}/generation_config.json"
                        + (" (written)" if a.write_weight else " (--write-weight)")),
              "valid_sweep": {str(w): v["top_1"] for w, v in sweep.items()}, "test": rows,
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
