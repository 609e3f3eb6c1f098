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


def cell_sizes(pred_file: Path) -> dict | None:
    """Atoms per cell of the first candidate's material over every prediction that parses (None: none does):
    median, mean, 90th percentile and the largest."""
    from naturelm.language.codecs import atoms_in_cell
    from naturelm.tasks.base import entity_of
    from naturelm.tasks.materials import parse_material

    sizes = []
    for line in pred_file.read_text().splitlines():
        cands = json.loads(line)["candidates"]
        parsed = parse_material(entity_of(cands[0]["text"])) if cands else None
        if parsed is not None:
            sizes.append(atoms_in_cell(parsed[0]))
    if not sizes:
        return None
    sizes.sort()
    return {"median": sizes[len(sizes) // 2], "mean": round(sum(sizes) / len(sizes), 1),
            "p90": sizes[int(0.9 * (len(sizes) - 1))], "max": sizes[-1], "n": len(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "naturelm-tiny"))
    parser.add_argument("--data", default=None, help="built data dir (test records of the conditional tasks)")
    parser.add_argument("--tasks", default="molecule_generation")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's (0.7)")
    parser.add_argument("--arms", default="free,held", help="which rows to run: free (grammar only), held")
    parser.add_argument("--keep", default=None, help="keep the predictions in this folder (default: a temporary one)")
    add_output_args(parser)
    a = parser.parse_args()
    a.out = str(output_path(a, "prompt_constraints.json"))

    from naturelm.api import NatureLM
    from naturelm.eval.harness import run_eval
    from naturelm.tasks.materials import MATERIAL_TASKS

    kw = {} if a.temperature is None else {"temperature": a.temperature}
    arms = {"free": False, "held": True}
    predictors = {arm: NatureLM.load(a.model, prompt_constraints=arms[arm], **kw) for arm in a.arms.split(",")}
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(a.keep or tmp)
        doc = run_eval([], a.tasks, data=a.data, out=keep, limit=a.limit, predictors=predictors, progress=False)
        files = {label: {t: keep / "predictions" / label / f"{t}.jsonl" for t in doc["settings"]["tasks"]
                         if (keep / "predictions" / label / f"{t}.jsonl").is_file()} for label in predictors}
        draws = {label: {t: mean_draws(f) for t, f in per.items()} for label, per in files.items()}
        cells = {label: {t: cell_sizes(f) for t, f in per.items() if t in MATERIAL_TASKS}
                 for label, per in files.items()}
    result = {"benchmark": "prompt_constraints", "model": a.model,
              "temperature": next(iter(predictors.values())).temperature,
              "limit": a.limit, "tasks": doc["tasks"], "results": doc["results"], "predict_wall_s": doc["wall_s"],
              "mean_draws": draws, "atoms_per_cell": cells, "notes": doc["notes"],
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_avg_1m": os.getloadavg()[0],
                          "note": "shared machine (several agents): wall times are contended"}}
    out = Path(a.out)
    if out.is_file():  # keep the rows of other tasks measured before
        old = json.loads(out.read_text())
        for key in ("results", "predict_wall_s", "mean_draws", "atoms_per_cell"):
            for label, rows in old.get(key, {}).items():
                result[key].setdefault(label, {}).update({t: v for t, v in rows.items() if t not in result[key][label]})
        result["tasks"] = {**old.get("tasks", {}), **result["tasks"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"results": result["results"], "mean_draws": draws, "atoms_per_cell": cells}, indent=1))


if __name__ == "__main__":
    main()
