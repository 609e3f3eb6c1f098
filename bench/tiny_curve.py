"""Retrosynthesis top-1 of NatureLM-tiny against training time: every saved SFT checkpoint on the same test products.

Each row: the checkpoint's step and training seconds, the model's greedy top-1, and top-1 of the model ranking
RetroSim's candidates (prior weight from --weight). Writes bench/results/tiny_curve.json and tiny_curve.png.
Usage: python bench/tiny_curve.py --curve runs/naturelm-tiny/curve --data DIR --limit 200 --weight W \
           --retrosim-predictions EVAL/predictions/retrosim/retrosynthesis.jsonl --metrics runs/naturelm-tiny/sft/metrics.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from retro_ranking import evaluate  # noqa: E402


def seconds_at(metrics: Path) -> dict[int, float]:
    """Cumulative training seconds at each logged step (tokens / tokens_per_s summed between logs)."""
    out, total, last_tokens = {}, 0.0, 0
    for line in metrics.open():
        m = json.loads(line)
        total += (m["tokens"] - last_tokens) / max(m["tokens_per_s"], 1e-9)
        last_tokens = m["tokens"]
        out[m["step"]] = total
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--curve", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--weight", type=float, default=0.0)
    ap.add_argument("--retrosim-predictions", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tiny_curve.json")
    args = ap.parse_args()
    secs = seconds_at(args.metrics)
    rows = []
    for ckpt in sorted(args.curve.glob("step_*")):
        step = int(ckpt.name.split("_")[1])
        r = evaluate(str(ckpt), args.data, "test", args.limit, 1, [args.weight], args.retrosim_predictions)
        near = max((s for s in secs if s <= step), default=0)
        rows.append({"step": step, "train_seconds": round(secs.get(near, 0.0), 1),
                     "greedy_top_1": r["top_k"]["model beams"]["top_1"],
                     "ranked_top_1": r["top_k"][f"union, w={args.weight}"]["top_1"],
                     "retrosim_top_1": r["top_k"]["retrosim"]["top_1"]})
        print(rows[-1])
    args.out.write_text(json.dumps({"n": args.limit, "weight": args.weight, "rows": rows}, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [r["train_seconds"] / 60 for r in rows]
    ax.plot(x, [r["greedy_top_1"] for r in rows], "o-", label="model, greedy")
    ax.plot(x, [r["ranked_top_1"] for r in rows], "s-", label="model ranks RetroSim candidates")
    ax.axhline(rows[-1]["retrosim_top_1"] if rows else 0, ls="--", c="gray", label="RetroSim")
    ax.set_xlabel("SFT training time (CPU minutes, one core)")
    ax.set_ylabel(f"top-1, first {args.limit} USPTO-50k test reactions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
