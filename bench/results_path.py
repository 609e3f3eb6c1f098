"""Where a benchmark writes its JSON: bench/runs/NAME (untracked) by default, bench/results/NAME (the committed
numbers the docs quote) only with --update-results, or any --out path."""
from __future__ import annotations

import argparse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"  # committed
RUNS = BENCH / "runs"  # untracked (.gitignore)


def add_output_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", default=None, help="JSON result path (default: bench/runs/NAME)")
    ap.add_argument("--update-results", action="store_true",
                    help="write the committed bench/results/NAME instead (the numbers the docs quote)")


def output_path(args: argparse.Namespace, name: str) -> Path:
    """--out, else bench/results/NAME with --update-results, else bench/runs/NAME; the folder is created."""
    path = Path(args.out) if args.out else (RESULTS if args.update_results else RUNS) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
