"""Encode 100k tagged SMILES with NatureTokenizer vs plain `re.findall` + a dict lookup, in the same run.

Writes bench/results/tokenizer_throughput.json. Usage: python bench/tokenizer_throughput.py [--n 100000]
"""
from __future__ import annotations

import sys

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from naturelm.language import NatureTokenizer, wrap
from naturelm.language.codecs.molecule import SMILES_REGEX
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

USPTO = Path(__file__).resolve().parents[2] / "shared/data/uspto50k/USPTO_50k_MHN_prepro.csv.gz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    add_output_args(ap)
    args = ap.parse_args()
    args.out = str(output_path(args, "tokenizer_throughput.json"))
    df = pd.read_csv(USPTO)
    pool = list(df["prod_smiles"]) + list(df["reactants_can"])
    smiles = [pool[i % len(pool)] for i in range(args.n)]
    texts = [wrap("mol", s) for s in smiles]
    tok = NatureTokenizer()

    t0 = time.perf_counter()
    n_tokens = sum(len(tok.encode(t)) for t in texts)
    ours = time.perf_counter() - t0

    vocab = {t: i for i, t in enumerate(sorted({u for s in smiles for u in SMILES_REGEX.findall(s)}))}
    t0 = time.perf_counter()
    n_base = sum(len([vocab[u] for u in SMILES_REGEX.findall(s)]) + 2 for s in smiles)
    base = time.perf_counter() - t0

    result = {
        "n_smiles": args.n,
        "naturetokenizer": {"seconds": ours, "smiles_per_s": args.n / ours, "tokens_per_s": n_tokens / ours},
        "baseline_regex_dict": {"seconds": base, "smiles_per_s": args.n / base, "tokens_per_s": n_base / base},
        "slowdown_vs_baseline": ours / base,
        "same_token_count": n_tokens == n_base,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
