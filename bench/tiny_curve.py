"""Retrosynthesis top-1 of NatureLM-tiny against training time, over every instruction-tuning stage.

`--stages` lists training run directories in order (e.g. runs/naturelm-tiny/{sft,sft-long,sft-final}). For each
stage, every saved checkpoint (`checkpoints/step_*/model.safetensors`, or an assembled `curve/step_*` model
directory when the run's own checkpoints were rotated away) and the final model are evaluated on the same test
products. Each row: stage, step, cumulative SFT training seconds (from the stages' metrics.jsonl), the model's
greedy top-1, top-1 of the model ranking RetroSim's candidates (prior weight --weight), and RetroSim's own top-1.
Writes bench/results/tiny_curve.json and tiny_curve.png.
Usage: python bench/tiny_curve.py --stages runs/naturelm-tiny/sft runs/naturelm-tiny/sft-long runs/naturelm-tiny/sft-final \
           --data DIR --limit 50 --weight W --retrosim-predictions EVAL/predictions/retrosim/retrosynthesis.jsonl
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from retro_ranking import evaluate  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "naturelm_tokenizer.json")


def seconds_at(metrics: Path) -> dict[int, float]:
    """Cumulative training seconds at each logged step (tokens / tokens_per_s summed between logs)."""
    out, total, last_tokens = {}, 0.0, 0
    for line in metrics.open():
        m = json.loads(line)
        total += (m["tokens"] - last_tokens) / max(m["tokens_per_s"], 1e-9)
        last_tokens = m["tokens"]
        out[m["step"]] = total
    return out


def val_loss_at(metrics: Path, step: int) -> float | None:
    """The validation loss logged at exactly `step` (None: none was measured there)."""
    logged = [json.loads(line) for line in metrics.open()]
    return next((m["val_loss"] for m in reversed(logged) if m["step"] == step and "val_loss" in m), None)


def stage_points(stage: Path, tmp: Path) -> list[tuple[int, Path]]:
    """(step, loadable model dir) for every checkpoint of one training run, ending with its final model."""
    points: dict[int, Path] = {}
    for ckpt in sorted((stage / "checkpoints").glob("step_*")):
        model = tmp / stage.name / ckpt.name
        model.mkdir(parents=True)
        for name in MODEL_FILES:
            if (stage / name).is_file():
                shutil.copy(stage / name, model / name)
        (model / "model.safetensors").symlink_to((ckpt / "model.safetensors").resolve())
        points[int(ckpt.name.split("_")[1])] = model
    for model in sorted((stage / "curve").glob("step_*")):
        points.setdefault(int(model.name.split("_")[1]), model)
    last = max((json.loads(line)["step"] for line in (stage / "metrics.jsonl").open()), default=0)
    points[last] = stage
    return sorted(points.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stages", type=Path, nargs="+", required=True, help="training run dirs, in training order")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--weight", type=float, default=0.0)
    ap.add_argument("--retrosim-predictions", type=Path, default=None)
    add_output_args(ap)
    args = ap.parse_args()
    args.out = output_path(args, "tiny_curve.json")
    rows, offset = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for stage in args.stages:
            secs = seconds_at(stage / "metrics.jsonl")
            for step, model in stage_points(stage, Path(tmp)):
                r = evaluate(str(model), args.data, "test", args.limit, 1, [args.weight], args.retrosim_predictions)
                near = max((s for s in secs if s <= step), default=0)
                rows.append({"stage": stage.name, "step": step, "train_seconds": round(offset + secs.get(near, 0.0), 1),
                             "val_loss": val_loss_at(stage / "metrics.jsonl", step),
                             "greedy_top_1": r["top_k"]["model beams"]["top_1"],
                             "ranked_top_1": r["top_k"][f"union, w={args.weight}"]["top_1"],
                             "retrosim_top_1": r["top_k"]["retrosim"]["top_1"]})
                print(rows[-1], flush=True)
            offset += max(secs.values(), default=0.0)
    args.out.write_text(json.dumps({"n": args.limit, "weight": args.weight, "stages": [str(s) for s in args.stages],
                                    "rows": rows}, indent=2))
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
