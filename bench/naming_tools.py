"""Naming tools on curated name <-> structure pairs (robocrys + chemicals/PubChem), in one run.

- SMILES -> IUPAC: nispo, openclatura, and "rules" (first OPSIN-verified name of the two).
  Correct = OPSIN parses the produced name to the gold InChIKey; no name counts as wrong.
- IUPAC -> SMILES: OPSIN on the database names (correct = same InChIKey as the database structure).
- Baseline, same run: the database's own names read by OPSIN ("database names"); namer accuracy is
  reported as a ratio to it.
Two samples per run: `verified` (pairs whose database name OPSIN already round-trips, from
`load_names`) and `raw` (any single-component record, so OPSIN's own accuracy is not 1 by construction).
Optionally (--engine-n) the naming data engine's throughput on MOSES training molecules.

Writes bench/results/naming_tools.json. Usage: python bench/naming_tools.py [--n 300] [--engine-n 1000]
"""
from __future__ import annotations

import sys

import argparse
import gzip
import importlib.util
import json
import os
import random
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from naturelm.data.naming import WARMUP, build_naming_pairs
from naturelm.data.sources.names import SOURCES, load_names, records, single_component
from naturelm.tools.namers import NAMERS, name_with
from naturelm.tools.opsin import inchikey, names_match, names_to_smiles
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402


def _sample(items: list, n: int, seed: int) -> list:
    return random.Random(seed).sample(items, min(n, len(items)))


def evaluate(sample: list[tuple[str, str, str, str]]) -> dict:
    """Every tool on (smiles, name, inchikey, source) records."""
    smiles, gold_names, keys, sources = zip(*sample)
    res: dict = {"n": len(sample)}
    correct = {}
    for namer in NAMERS:
        name_with(namer, [WARMUP, "CCO"])  # lazy rule tables load outside the timing
        t0, c0 = time.perf_counter(), time.process_time()
        produced = name_with(namer, list(smiles))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        correct[namer] = names_match(produced, list(smiles))
        res[namer] = {
            "coverage": sum(p is not None for p in produced) / len(sample),
            "top1_accuracy": sum(correct[namer]) / len(sample),
            "same_string_as_database": sum(p == g for p, g in zip(produced, gold_names)) / len(sample),
            "molecules_per_s": len(sample) / dt,
            "molecules_per_cpu_s": len(sample) / cpu,
            "examples_wrong": [(s, p) for s, p, ok in zip(smiles, produced, correct[namer]) if not ok][:5],
        }
    res["rules"] = {"top1_accuracy": sum(any(c[i] for c in correct.values()) for i in range(len(sample))) / len(sample)}
    t0 = time.perf_counter()
    parsed = names_to_smiles(list(gold_names))
    dt = time.perf_counter() - t0
    ok = [p is not None and inchikey(p) == k for p, k in zip(parsed, keys)]
    res["opsin"] = {
        "parsed": sum(p is not None for p in parsed) / len(sample),
        "accuracy": sum(ok) / len(sample),
        "names_per_s_incl_jvm_start": len(sample) / dt,
        "examples_wrong": [(g, p) for g, p, o in zip(gold_names, parsed, ok) if not o][:5],
    }
    correct["opsin"] = ok
    correct["rules"] = [any(correct[n][i] for n in NAMERS) for i in range(len(sample))]
    res["by_source"] = {}
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        res["by_source"][src] = {"n": len(idx)} | {t: sum(c[i] for i in idx) / len(idx) for t, c in correct.items()}
    base = res["opsin"]["accuracy"]
    res["database_names_baseline_accuracy"] = base
    for namer in (*NAMERS, "rules"):
        res[namer]["ratio_vs_database_names"] = res[namer]["top1_accuracy"] / base if base else None
    return res


def engine_throughput(n: int, workers: int) -> dict:
    """The naming data engine on the first n MOSES training molecules, in a temporary directory."""
    spec = importlib.util.find_spec("moses")
    if spec is None:
        return {"skipped": "pip install --no-deps molsets==0.3.1"}
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset/data/train.csv.gz"
    with gzip.open(path, "rt") as f:
        next(f)  # header: SMILES
        smiles = [line.strip() for _, line in zip(range(n), f)]
    with tempfile.TemporaryDirectory() as tmp:
        stats = build_naming_pairs(smiles, tmp, workers=workers)
    return asdict(stats) | {"source": "MOSES train (first molecules)"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine-n", type=int, default=0, help="also time the naming engine on N MOSES molecules")
    ap.add_argument("--workers", type=int, default=2)
    add_output_args(ap)
    args = ap.parse_args()
    args.out = str(output_path(args, "naming_tools.json"))

    verified = load_names()
    per = args.n // len(SOURCES)
    ver_sample, raw_sample = [], []
    for source in SOURCES:
        pairs = verified.by_source(source)
        ver_sample += [(p.smiles, p.name, p.inchikey, source) for p in _sample(pairs, per, args.seed)]
        raw = _sample(records(source), 3 * per, args.seed)  # oversample: some records are not single-component
        raw_sample += [(*rec, source) for rec in single_component(raw)[:per]]
    result = {
        "what": "top-1 correctness = OPSIN maps the produced name to the gold InChIKey; molecules/s on one core",
        "load_average_at_start": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "n": args.n,
        "seed": args.seed,
        "name_pairs_available": {s: dict(r) for s, r in verified.report.items()},
        "verified": evaluate(ver_sample),
        "raw": evaluate(raw_sample),
    }
    if args.engine_n:
        result["engine"] = engine_throughput(args.engine_n, args.workers)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
