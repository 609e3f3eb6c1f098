"""Tune and measure ranking of the union of model beams and RetroSim candidates (issue 8), on the VALID split.

For each prior weight w the order is: model mean log-probability + w x RetroSim score. w = 0 is the model alone
ranking the union; "retrosim" is RetroSim's own order. Writes bench/results/retro_ranking.json.
Usage: python bench/retro_ranking.py --model CKPT --data DIR [--limit 300] [--model-beams 10]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from naturelm.eval.harness import load_predictor, order_union, union_scores
from naturelm.tasks.base import Context, Example, get_task
from naturelm.tasks.baselines.retrosim import RetroSim

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 15.0)


def valid_examples(task, data: Path, limit: int) -> list[Example]:
    out, seen = [], set()
    for line in (data / "instructions" / "valid.jsonl").open():
        rec = json.loads(line)
        if rec.get("task") != task.name or rec["meta"]["product"] in seen:
            continue
        seen.add(rec["meta"]["product"])
        out.append(Example(task.query(rec), rec["instruction"], rec["meta"], rec["response"]))
        if len(out) >= limit:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--model-beams", type=int, default=10, help="model beam candidates added to the union (0: none)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "retro_ranking.json")
    args = ap.parse_args()

    task = get_task("retrosynthesis")
    examples = valid_examples(task, args.data, args.limit)
    queries = [e.query for e in examples]
    t0 = time.perf_counter()
    saved = args.data / "retrosim"
    retrosim = load_predictor("retrosim", args.data)
    if not (saved / "retrosim.json").is_file() and isinstance(retrosim, RetroSim):
        retrosim.save(saved)  # `naturelm eval --data DIR` reuses it
    rs = retrosim.predict("retrosynthesis", queries, 10)
    t_rs = time.perf_counter() - t0

    model = load_predictor(args.model)
    t0 = time.perf_counter()
    beams = model.predict("retrosynthesis", queries, args.model_beams) if args.model_beams else [[] for _ in queries]
    t_beams = time.perf_counter() - t0
    t0 = time.perf_counter()
    scored = union_scores(model, examples, beams, rs)
    t_rank = time.perf_counter() - t0

    ctx = Context(args.data, progress=False)
    rows = {"retrosim": task.score(examples, rs, ctx)}
    if args.model_beams:
        rows["model beams"] = task.score(examples, beams, ctx)
    for w in WEIGHTS:
        rows[f"union, w={w}"] = task.score(examples, order_union(scored, w, 10), ctx)
    best = max(WEIGHTS, key=lambda w: (rows[f"union, w={w}"]["top_1"], rows[f"union, w={w}"]["top_3"]))
    result = {"split": "valid", "n": len(examples), "model": args.model, "model_beams": args.model_beams,
              "seconds": {"retrosim": t_rs, "model_beams": t_beams, "model_rank": t_rank},
              "best_weight": best,
              "top_k": {name: {k: v for k, v in m.items() if k.startswith("top_")} for name, m in rows.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for name, m in result["top_k"].items():
        print(f"{name:22s} " + "  ".join(f"{k}={v:.3f}" for k, v in m.items()))
    print(f"best weight on valid: {best}")


if __name__ == "__main__":
    main()
