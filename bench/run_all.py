"""Run the self-contained benchmarks (each measures its own baseline in the same run) and summarise them.

`make bench` runs this. Benchmarks that need a built data directory or a long evaluation (retro_ranking,
tiny_curve, retrosim_uspto50k on the full test set, train_throughput) are listed with the command that runs them.
Each benchmark writes its own JSON under bench/results/; this script writes bench/results/summary.json with the
exit status and wall time of every run. Usage: python bench/run_all.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

BENCH = Path(__file__).parent
REPO = BENCH.parent

QUICK = {
    "tokenizer_throughput": ["--n", "20000"],
    "generate_throughput": ["--prompts", "4", "--reps", "1", "--validity-samples", "50"],
    "naming_tools": ["--n", "60"],
    "retrosim_uspto50k": ["--limit", "200"],
    "serve_load": ["--clients", "8", "--requests", "32", "--sequential", "8"],
}
FULL = {
    "tokenizer_throughput": [],
    "generate_throughput": [],
    "naming_tools": [],
    "retrosim_uspto50k": [],
    "serve_load": [],
}
MANUAL = {
    "train_throughput": "python bench/train_throughput.py --data DATA_DIR",
    "retro_ranking": "python bench/retro_ranking.py --model checkpoints/naturelm-tiny --data DATA_DIR --split valid",
    "tiny_curve": "python bench/tiny_curve.py --curve runs/naturelm-tiny/curve --data DATA_DIR --metrics METRICS",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (minutes); results are noisier")
    ap.add_argument("--only", default=None, help="comma-separated benchmark names")
    add_output_args(ap)
    args = ap.parse_args()
    args.out = str(output_path(args, "summary.json"))
    plan = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(plan)
    unknown = sorted(set(names) - set(plan))
    if unknown:
        ap.error(f"unknown benchmarks {unknown}; choose from {sorted(plan)}")
    runs = {}
    for name in names:
        cmd = [sys.executable, str(BENCH / f"{name}.py"), *plan[name], *(["--update-results"] if args.update_results else [])]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=REPO)
        runs[name] = {"returncode": rc, "seconds": round(time.perf_counter() - t0, 1), "args": plan[name],
                      "result": f"bench/{'results' if args.update_results else 'runs'}/{name}.json"}
    summary = {"quick": args.quick, "runs": runs, "not_run_here": MANUAL}
    Path(args.out).write_text(json.dumps(summary, indent=1))
    failed = [n for n, r in runs.items() if r["returncode"]]
    print(f"summary: {args.out}; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
