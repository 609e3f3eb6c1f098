"""What the prompt's constraints change: the same checkpoint with and without them, same tasks and examples.

`naturelm eval` rows `free` (grammar only: tags, balanced SMILES) and `held` (plus what the prompt asks, held while
decoding and by redrawing: naturelm.tasks.requests), at the checkpoint's sampling temperature, with the mean
number of draws per answer and the prediction time of each row.

    python bench/prompt_constraints.py --model checkpoints/naturelm-tiny --data DIR \
        --tasks molecule_generation --limit 200
Writes bench/runs/prompt_constraints.json (bench/results/ with --update-results, or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py
from results_path import add_output_args, output_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def mean_draws(pred_file: Path) -> float | None:
    """Mean `draws` over every stored candidate of one prediction file (None when none is recorded)."""
    draws = [c["meta"].get("draws", 1) for line in pred_file.read_text().splitlines()
             for c in json.loads(line)["candidates"]]
    return sum(draws) / len(draws) if draws else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "naturelm-tiny"))
    parser.add_argument("--data", default=None, help="built data dir (test records of the conditional tasks)")
    parser.add_argument("--tasks", default="molecule_generation")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's (0.7)")
    add_output_args(parser)
    a = parser.parse_args()
    a.out = str(output_path(a, "prompt_constraints.json"))

    from naturelm.api import NatureLM
    from naturelm.eval.harness import run_eval

    kw = {} if a.temperature is None else {"temperature": a.temperature}
    predictors = {"free": NatureLM.load(a.model, prompt_constraints=False, **kw),
                  "held": NatureLM.load(a.model, prompt_constraints=True, **kw)}
    with tempfile.TemporaryDirectory() as tmp:
        doc = run_eval([], a.tasks, data=a.data, out=tmp, limit=a.limit, predictors=predictors, progress=False)
        draws = {label: {t: mean_draws(Path(tmp) / "predictions" / label / f"{t}.jsonl")
                         for t in doc["settings"]["tasks"]
                         if (Path(tmp) / "predictions" / label / f"{t}.jsonl").is_file()} for label in predictors}
    result = {"benchmark": "prompt_constraints", "model": a.model, "temperature": predictors["held"].temperature,
              "limit": a.limit, "tasks": doc["tasks"], "results": doc["results"], "predict_wall_s": doc["wall_s"],
              "mean_draws": draws, "notes": doc["notes"],
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_avg_1m": os.getloadavg()[0],
                          "note": "shared machine (several agents): wall times are contended"}}
    out = Path(a.out)
    if out.is_file():  # keep the rows of other tasks measured before
        old = json.loads(out.read_text())
        for key in ("results", "predict_wall_s", "mean_draws"):
            for label, rows in old.get(key, {}).items():
                result[key].setdefault(label, {}).update({t: v for t, v in rows.items() if t not in result[key][label]})
        result["tasks"] = {**old.get("tasks", {}), **result["tasks"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"results": result["results"], "mean_draws": draws}, indent=1))


if __name__ == "__main__":
    main()
