"""Torch threads for decoding on a busy machine: 1 vs 2 threads, with the cores idle and under contention.

The shipped NatureLM-tiny samples molecules (`<mol>`, n=8, 48 new tokens, fixed seed) with torch on 1 and then
2 threads, first as the machine is, then with BUSY extra processes spinning on the CPU (other work sharing the
cores). All four settings run in the same process, alternating, `--repeats` times; the result is the median
seconds per setting and the same-run ratio 2 threads / 1 thread per condition (> 1: the second thread slows
decoding down). naturelm.generate.threads picks 1 thread for small models from this.

Usage: python bench/threads_contention.py [--repeats 3] [--busy 2] [--update-results]
Writes bench/runs/threads_contention.json (bench/results/ with --update-results). About 2 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py
from results_path import add_output_args, output_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _decode_seconds(lm, threads: int, n: int, tokens: int) -> float:
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    lm.generate("<mol>", n=n, raw=True, max_new_tokens=tokens, seed=0, temperature=0.7)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "checkpoints" / "naturelm-tiny"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=2, help="spinning processes for the contended condition")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    add_output_args(ap)
    args = ap.parse_args()

    from naturelm.api import NatureLM
    from naturelm.generate.threads import available_cores

    lm = NatureLM.load(args.model, threads=1)
    _decode_seconds(lm, 1, args.n, args.tokens)  # warm-up
    times: dict[str, list[float]] = {f"{c}_{t}": [] for c in ("idle", "contended") for t in (1, 2)}
    for _ in range(args.repeats):
        for condition in ("idle", "contended"):
            stop, procs = mp.Event(), []
            if condition == "contended":
                procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
                for p in procs:
                    p.start()
                time.sleep(0.5)
            try:
                for threads in (1, 2):
                    times[f"{condition}_{threads}"].append(_decode_seconds(lm, threads, args.n, args.tokens))
            finally:
                stop.set()
                for p in procs:
                    p.join(timeout=5)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "threads_contention", "model": args.model,
        "workload": {"prompt": "<mol>", "n": args.n, "max_new_tokens": args.tokens, "repeats": args.repeats},
        "machine": {"platform": platform.platform(), "available_cores": available_cores(),
                    "load_average_at_start": os.getloadavg()[0], "busy_processes": args.busy},
        "seconds_median": {k: round(v, 3) for k, v in median.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratio_2_over_1": {c: round(median[f"{c}_2"] / median[f"{c}_1"], 3) for c in ("idle", "contended")},
        "contention_slowdown": {f"{t}_threads": round(median[f"contended_{t}"] / median[f"idle_{t}"], 3) for t in (1, 2)},
    }
    out = output_path(args, "threads_contention.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("seconds_median", "ratio_2_over_1", "contention_slowdown")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
