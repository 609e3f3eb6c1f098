"""`naturelm train pretrain|sft|dpo --config FILE.yaml [--set key=value ...] --out DIR`.

Single process: `naturelm train sft --config configs/tiny_sft.yaml --out runs/sft`.
Distributed: `accelerate launch --config_file configs/accelerate/fsdp.yaml -m naturelm.train.cli sft ...`
or `torchrun --nproc_per_node 8 -m naturelm.train.cli sft ...`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Train NatureLM models: pre-training, SFT (optionally LoRA) and DPO.", no_args_is_help=True)

CONFIG = typer.Option(..., "--config", "-c", help="YAML recipe (see configs/)")
SET = typer.Option(None, "--set", "-s", help="override a recipe key, e.g. --set train.lr=1e-4 --set lora.r=8")
OUT = typer.Option(..., "--out", "-o", help="run directory: checkpoints, metrics, final HF model")


def _run(task: str, config: Path, sets: Optional[List[str]], out: Path) -> None:
    from naturelm.train.config import load_config
    from naturelm.train.loop import run

    summary = run(task, load_config(config, sets), out)
    final = summary["final"]
    if final and os.environ.get("RANK", "0") == "0":
        typer.echo(f"{task}: step {final['step']} loss {final['loss']:.4f} -> {out}")


@app.command()
def pretrain(config: Path = CONFIG, set: Optional[List[str]] = SET, out: Path = OUT) -> None:
    """Pre-train (or continue pre-training, stage 1/2) on packed blocks of the built corpus."""
    _run("pretrain", config, set, out)


@app.command()
def sft(config: Path = CONFIG, set: Optional[List[str]] = SET, out: Path = OUT) -> None:
    """Instruction-tune on Instruction/Response pairs (loss on the response only)."""
    _run("sft", config, set, out)


@app.command()
def dpo(config: Path = CONFIG, set: Optional[List[str]] = SET, out: Path = OUT) -> None:
    """DPO on RDKit-oracle preference pairs; reference = the SFT model (model.init)."""
    _run("dpo", config, set, out)


if __name__ == "__main__":
    app()
