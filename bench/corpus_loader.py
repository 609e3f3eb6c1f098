"""Pre-training loader throughput: ShardedBlocks (the shards of `naturelm data corpus`) against PackedBlocks (one
memory-mapped `train.bin`, the `naturelm data build` layout) on the same token stream, in the same run.

The shards' train stream is concatenated into DIR/packed/pretrain/train.bin, so both loaders serve the same tokens;
rounds alternate between the two (machine contention hits both alike). tokens/s = blocks x block_size / seconds
spent in `global_batch_indices` + `collate` (what the training loop calls per step).

  python bench/corpus_loader.py --data CORPUS_DIR --out bench/results/corpus_loader.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def tokens_per_s(data, steps: range) -> float:
    t0 = time.perf_counter()
    n = 0
    for s in steps:
        batch = data.collate(data.global_batch_indices(s))
        n += batch["input_ids"].numel()
    return n / (time.perf_counter() - t0)


def main():
    from naturelm.data.shards import shard_paths
    from naturelm.train.data import PackedBlocks, ShardedBlocks

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="output of `naturelm data corpus`")
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--global-batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200, help="steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    data = Path(a.data)
    packed = data / "packed"
    if not (packed / "pretrain" / "train.bin").exists():
        (packed / "pretrain").mkdir(parents=True, exist_ok=True)
        with open(packed / "pretrain" / "train.bin", "wb") as f:
            for p, _ in shard_paths(data / "pretrain", "train"):
                f.write(p.read_bytes())
        (packed / "pretrain" / "meta.json").write_text(json.dumps({"block_size": a.block_size}))
    sharded = ShardedBlocks(data, "train", a.block_size, a.global_batch, seed=0)
    flat = PackedBlocks(packed, "train", a.block_size, a.global_batch, seed=0)
    tokens_per_s(sharded, range(3))  # warm-up: imports, first pages
    tokens_per_s(flat, range(3))
    rates = {"sharded": [], "packed": []}
    for r in range(a.rounds):
        steps = range(r * a.steps, (r + 1) * a.steps)
        for name, loader in (("sharded", sharded), ("packed", flat)) if r % 2 == 0 else (("packed", flat), ("sharded", sharded)):
            rates[name].append(tokens_per_s(loader, steps))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    result = {"data": str(data), "train_tokens": int(sum(n for _, n in shard_paths(data / "pretrain", "train"))),
              "shards": len(sharded.paths), "block_size": a.block_size, "global_batch": a.global_batch,
              "steps_per_round": a.steps, "rounds": a.rounds,
              "tokens_per_s_median": {k: round(v) for k, v in med.items()},
              "tokens_per_s_rounds": {k: [round(x) for x in v] for k, v in rates.items()},
              "ratio_sharded_over_packed": round(med["sharded"] / med["packed"], 3),
              "note": "loader only (index + collate), single process, same token stream; machine shared by several "
                      "agents (same-run ratio)"}
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
