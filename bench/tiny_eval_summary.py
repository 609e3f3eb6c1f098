"""Collect the `naturelm eval` runs behind the NatureLM-tiny model card into one JSON.

    .venv/bin/python bench/tiny_eval_summary.py runs/naturelm-tiny/{eval,eval-fwd,eval-naming,eval-tasks,...}

Writes bench/results/naturelm_tiny_eval.json: per run, its settings, results, per-task metadata, notes and oracles.
"""
from __future__ import annotations

import sys

import argparse
import json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

KEEP = ("settings", "results", "tasks", "notes", "oracles", "wall_s", "data", "created")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", type=Path, nargs="+", help="naturelm eval output dirs (each with results.json)")
    ap.add_argument("--checkpoint", default="checkpoints/naturelm-tiny")
    add_output_args(ap)
    args = ap.parse_args()
    args.out = output_path(args, "naturelm_tiny_eval.json")
    missing = [str(r) for r in args.runs if not (r / "results.json").is_file()]
    if missing:
        raise SystemExit(f"no results.json in {', '.join(missing)}: run the `naturelm eval` commands of `make naturelm-tiny`")
    runs = {}
    for run in args.runs:
        doc = json.loads((run / "results.json").read_text())
        runs[run.name] = {k: doc[k] for k in KEEP if k in doc}
    args.out.write_text(json.dumps({"checkpoint": args.checkpoint, "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
