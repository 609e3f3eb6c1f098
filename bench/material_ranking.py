"""Tune the composition tool's weight of `design_material(method="ranked")` on a VALID split (composition -> material).

For each composition_to_material record of the split, the SMACT composition tool (`naturelm eval`'s `smact`
baseline, within the data card's atoms-per-cell bound) proposes its top RANKING_POOL candidates, as the eval's
ranked row gets them; the model scores them ONCE (`naturelm.tasks.ranking.union_scores`), then for each weight w they
are ordered by model mean log-probability + w x tool score (`order_union`) and the top-1 answer is scored with the
task's own metrics (`CompositionToMaterial.score`, as `naturelm eval` computes them). Rows: the tool alone (its own
order, w -> infinity), the model alone (w = 0) and every weight. `best_weight`: the highest formula_match; ties: the
smaller distance between the answers' and the records' median atoms per cell, then the smaller weight.
`--write-weight` stores it as `naturelm_material_rank_weight` in MODEL/generation_config.json (what `NatureLM.load`
reads: `design_material(method="auto")` and `naturelm eval --rank` then rank with it).

    python bench/material_ranking.py --model CKPT --data DIR --split valid --limit 200 [--weights 0,1,2,3,5,8,15]
        [--write-weight] [--out PATH]
Writes bench/runs/material_ranking_{split}.json (bench/results/ with --update-results, or --out).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

from naturelm.eval.harness import RANKING_POOL, load_predictor
from naturelm.tasks.base import Context, get_task
from naturelm.tasks.ranking import order_union, union_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, bench/retro_ranking.py
from results_path import add_output_args, output_path  # noqa: E402
from retro_ranking import split_examples  # noqa: E402

TASK = "composition_to_material"
WEIGHTS = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0, 100.0)
CHUNK = 20  # examples scored between progress lines
FIRST = ("formula_match", "atoms_per_cell_median", "record_atoms_per_cell_median", "element_precision",
         "element_recall", "element_exact", "smact_validity_as_requested", "smact_validity",
         "smact_validity_no_alloy_shortcut")


def _ordered(metrics: dict) -> dict:
    """The task's metrics, formula_match and the atoms-per-cell medians first."""
    return {**{k: metrics[k] for k in FIRST if k in metrics}, **{k: v for k, v in metrics.items() if k not in FIRST}}


def atoms_gap(row: dict) -> float:
    """|median atoms per cell of the answers - the records'|; infinite when either is unknown."""
    a, r = row.get("atoms_per_cell_median"), row.get("record_atoms_per_cell_median")
    return math.inf if a is None or r is None else abs(a - r)


def best_weight(sweep: list[dict]) -> float:
    """The weight of the row with the highest formula_match; ties: the smaller `atoms_gap`, then the smaller weight."""
    return min(sweep, key=lambda row: (-row["formula_match"], atoms_gap(row), row["weight"]))["weight"]


def sweep_weights(model, tool, data: Path, split: str, limit: int | None, weights, progress: bool = True) -> dict:
    """Tool alone, model alone and one row per weight on the split's first `limit` composition records."""
    task = get_task(TASK)
    examples = split_examples(task, data, split, limit, key=None)  # every record, as `naturelm eval` reads them
    queries = [e.query for e in examples]
    wall = {}
    t = time.perf_counter()
    proposals = tool.predict(TASK, queries, RANKING_POOL[TASK])
    wall["tool"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = []
    for i in range(0, len(examples), CHUNK):
        scored += union_scores(model, examples[i:i + CHUNK], proposals[i:i + CHUNK], task=TASK)
        if progress:
            print(f"  scored {len(scored)}/{len(examples)} requests ({time.perf_counter() - t:.0f} s)", flush=True)
    wall["model_scoring"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx = Context(data, progress=False)
    tool_alone = _ordered(task.score(examples, proposals, ctx))
    sweep = [{"weight": w, **_ordered(task.score(examples, order_union(scored, w, 1), ctx))} for w in weights]
    at_zero = [row for row in sweep if row["weight"] == 0.0]
    model_alone = ({k: v for k, v in at_zero[0].items() if k != "weight"} if at_zero
                   else _ordered(task.score(examples, order_union(scored, 0.0, 1), ctx)))
    wall["metrics"] = time.perf_counter() - t
    return {"split": split, "n": len(examples), "candidates_per_request": RANKING_POOL[TASK],
            "requests_without_candidates": sum(not row for row in proposals),
            "tool_alone": tool_alone, "model_alone": model_alone, "sweep": sweep,
            "best_weight": best_weight(sweep), "wall_s": {k: round(v, 2) for k, v in wall.items()}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="checkpoint directory")
    ap.add_argument("--data", required=True, type=Path, help="a `naturelm data build` output")
    ap.add_argument("--split", choices=("valid", "test"), default="valid", help="tune on valid; test only to report")
    ap.add_argument("--limit", type=int, default=200, help="first N composition_to_material records (0: all)")
    ap.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS))
    ap.add_argument("--write-weight", action="store_true",
                    help="store best_weight as naturelm_material_rank_weight in MODEL/generation_config.json")
    add_output_args(ap)  # NAME: material_ranking_{split}.json
    a = ap.parse_args(argv)
    try:
        weights = sorted({float(w) for w in a.weights.split(",") if w.strip()})
    except ValueError:
        ap.error(f"--weights must be comma-separated numbers, not {a.weights!r}")
    if not weights or not all(math.isfinite(w) and w >= 0 for w in weights):
        ap.error(f"--weights must be finite numbers >= 0, not {a.weights!r}")
    if a.write_weight and a.split != "valid":
        ap.error("--write-weight stores a weight tuned on the valid split: use --split valid")

    from naturelm.api import MATERIAL_RANK_WEIGHT_KEY, write_rank_weight

    t = time.perf_counter()
    model = load_predictor(a.model)
    tool = load_predictor("smact", a.data)  # the data card's atoms-per-cell bound, as `naturelm eval` loads it
    load_s = time.perf_counter() - t
    result = sweep_weights(model, tool, a.data, a.split, a.limit or None, weights)
    result["wall_s"]["load"] = round(load_s, 2)
    if a.write_weight:
        write_rank_weight(a.model, MATERIAL_RANK_WEIGHT_KEY, result["best_weight"])
    result = {"benchmark": "material_ranking", "model": a.model, "data": str(a.data), "limit": a.limit,
              "weights": weights, **result, "written": MATERIAL_RANK_WEIGHT_KEY if a.write_weight else None,
              "apply": (f"{MATERIAL_RANK_WEIGHT_KEY}: {result['best_weight']} in {a.model}/generation_config.json"
                        + (" (written)" if a.write_weight else " (--write-weight)")),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                          "note": "shared machine: wall times are contended"}}
    out = output_path(a, f"material_ranking_{a.split}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    shown = ("formula_match", "atoms_per_cell_median", "record_atoms_per_cell_median", "element_precision",
             "element_recall", "smact_validity_as_requested")
    print("row                 " + "  ".join(shown))
    rows = [("tool alone", result["tool_alone"]), ("model alone (w=0)", result["model_alone"])]
    for name, m in rows + [(f"w={row['weight']:g}", row) for row in result["sweep"]]:
        print(f"{name:19s} " + "  ".join(f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else str(m.get(k)) for k in shown))
    print(f"best_weight: {result['best_weight']}  (n={result['n']}; {out})")
    return result


if __name__ == "__main__":
    main()
