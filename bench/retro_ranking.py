"""Rank the union of model beams and RetroSim candidates with the model (issue 8): tune on VALID, measure on TEST.

With --model-beams N the same run also scores the model's own beams alone, and RetroSim's candidates alone ranked
by the model (the shipped `NatureLM.retrosynthesis(method="ranked")`), so every row shares one set of test products.

For a prior weight w the order is: model mean log-probability + w x RetroSim score (w = 0: the model alone ranks
the union; "retrosim": RetroSim's own order). `--split valid` sweeps w and picks the best; `--split test --weight W`
measures the chosen w once, on the full test set (RetroSim's test predictions can be reused from a
`naturelm eval` run with --retrosim-predictions). Writes bench/results/retro_ranking_{split}.json.
Usage: python bench/retro_ranking.py --model CKPT --data DIR --split valid [--limit 300] [--model-beams 10]
       python bench/retro_ranking.py --model CKPT --data DIR --split test --weight W --model-beams 0 \
           --retrosim-predictions EVAL/predictions/retrosim/retrosynthesis.jsonl
"""
from __future__ import annotations

import sys

import argparse
import json
import time
from pathlib import Path

from naturelm.errors import DataFileError, DataSourceMissing
from naturelm.eval.harness import load_predictor
from naturelm.tasks.ranking import order_union, union_scores
from naturelm.tasks.base import Context, Example, get_task
from naturelm.tasks.baselines.base import Candidate
from naturelm.tasks.baselines.retrosim import RetroSim
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 15.0)


def split_examples(task, data: Path, split: str, limit: int | None,
                   key=lambda rec: rec["meta"]["product"]) -> list[Example]:
    """The first `limit` records of `task` in DATA/instructions/SPLIT.jsonl, one per `key(record)` (default: one per
    product, as the valid split also holds augmented retrosynthesis copies; None: every record, as `naturelm eval`
    reads them). DataSourceMissing without the file, DataFileError naming it when it holds no record of the task."""
    path = data / "instructions" / f"{split}.jsonl"
    if not path.is_file():
        raise DataSourceMissing(str(path), "build the data first: `naturelm data build --out DIR`, then pass --data DIR")
    out, seen = [], set()
    for line in path.open():
        rec = json.loads(line)
        if rec.get("task") != task.name:
            continue
        if key is not None:
            if key(rec) in seen:
                continue
            seen.add(key(rec))
        out.append(Example(task.query(rec), rec["instruction"], rec.get("meta", {}), rec.get("response", "")))
        if limit and len(out) >= limit:
            break
    if not out:
        raise DataFileError(path, f"no {task.name} records in this split: pass a data dir built with that task")
    return out


def retrosim_candidates(data: Path, queries: list[str], stored_jsonl: Path | None) -> list[list[Candidate]]:
    """RetroSim's top-10 per query: read from a `naturelm eval` predictions file, or computed (and saved in DATA)."""
    if stored_jsonl:
        stored = {}
        for line in stored_jsonl.open():
            rec = json.loads(line)
            stored[rec["query"]] = [Candidate(**c) for c in rec["candidates"]]
        return [stored[q] for q in queries]
    saved = data / "retrosim"
    retrosim = load_predictor("retrosim", data)
    if not (saved / "retrosim.json").is_file() and isinstance(retrosim, RetroSim):
        retrosim.save(saved)  # `naturelm eval --data DIR` reuses it
    return retrosim.predict("retrosynthesis", queries, 10)


def _score_slice(args) -> list[list[tuple]]:
    """Worker: load the model once, score one slice of examples (model beams + RetroSim union)."""
    import torch

    torch.set_num_threads(1)
    model_dir, examples, rs, model_beams = args
    model = load_predictor(model_dir)
    queries = [e.query for e in examples]
    beams = model.predict("retrosynthesis", queries, model_beams) if model_beams else [[] for _ in queries]
    return [(b, row) for b, row in zip(beams, union_scores(model, examples, beams, rs))]


def evaluate(model_dir: str, data: Path, split: str, limit: int | None, model_beams: int, weights,
             retrosim_predictions: Path | None = None, processes: int = 1) -> dict:
    """top-k of RetroSim, of the model's beams and of the model-ranked union for each weight."""
    task = get_task("retrosynthesis")
    examples = split_examples(task, data, split, limit)
    queries = [e.query for e in examples]
    t0 = time.perf_counter()
    rs = retrosim_candidates(data, queries, retrosim_predictions)
    t_rs = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = max(1, processes)
    bounds = [len(examples) * i // n for i in range(n + 1)]
    slices = [(model_dir, examples[a:b], rs[a:b], model_beams) for a, b in zip(bounds, bounds[1:])]
    if n == 1:
        parts = [_score_slice(slices[0])]
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(n) as pool:
            parts = pool.map(_score_slice, slices)
    beams = [b for part in parts for b, _ in part]
    scored = [row for part in parts for _, row in part]
    t_model = time.perf_counter() - t0
    ctx = Context(data, progress=False)
    rows = {"retrosim": task.score(examples, rs, ctx)}
    if model_beams:
        rows["model beams"] = task.score(examples, beams, ctx)
    for w in weights:
        rows[f"union, w={w}"] = task.score(examples, order_union(scored, w, 10), ctx)
    if model_beams:  # the same scores restricted to RetroSim's own candidates: what NatureLM.retrosynthesis ships
        from naturelm.language.codecs import try_canonical

        own = [{try_canonical(c.text, reactant_set=True) for c in row} for row in rs]
        only_rs = [[(g, p) for g, p in row if g.canonical in keys] for row, keys in zip(scored, own)]
        for w in weights:
            rows[f"retrosim candidates ranked, w={w}"] = task.score(examples, order_union(only_rs, w, 10), ctx)
    return {"split": split, "n": len(examples), "model": model_dir, "model_beams": model_beams,
            "seconds": {"retrosim": t_rs, "model_beams_and_rank": t_model}, "processes": n,
            "top_k": {name: {k: v for k, v in m.items() if k.startswith("top_")} for name, m in rows.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--split", choices=("valid", "test"), default="valid")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--weight", type=float, default=None, help="test: the weight chosen on valid")
    ap.add_argument("--retrosim-predictions", type=Path, default=None,
                    help="JSONL of RetroSim candidates written by `naturelm eval` (same examples, same order)")
    ap.add_argument("--model-beams", type=int, default=10, help="model beam candidates added to the union (0: none)")
    ap.add_argument("--processes", type=int, default=1, help="worker processes (each loads the model)")
    add_output_args(ap)  # NAME: retro_ranking_{split}.json
    args = ap.parse_args()

    weights = WEIGHTS if args.split == "valid" else sorted({0.0, args.weight or 0.0})
    result = evaluate(args.model, args.data, args.split, args.limit, args.model_beams, weights,
                      args.retrosim_predictions, args.processes)
    top = result["top_k"]
    if args.split == "valid":
        result["best_weight"] = max(weights, key=lambda w: (top[f"union, w={w}"]["top_1"], top[f"union, w={w}"]["top_3"]))
    else:
        result["weight"] = args.weight
    out = output_path(args, f"retro_ranking_{args.split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for name, m in top.items():
        print(f"{name:22s} " + "  ".join(f"{k}={v:.3f}" for k, v in m.items()))
    print(f"weight: {result.get('best_weight', result.get('weight'))}")


if __name__ == "__main__":
    main()
