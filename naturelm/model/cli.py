"""`naturelm model info | expand | merge-lora`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="NatureLM model family: sizes, vocabulary expansion, LoRA merging.", no_args_is_help=True)


@app.command()
def info(config: str = typer.Option("tiny", "--config", "-c", help="tiny | 1b | 8b | 8x7b"),
         vocab_size: Optional[int] = typer.Option(None, help="default: the shipped tokenizer for tiny, the paper's otherwise"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Parameter counts of a named config, instantiated on the meta device (no memory)."""
    from naturelm.model.configs import param_count

    if vocab_size is None and config == "tiny":
        from naturelm.language.tokenizer import NatureTokenizer

        vocab_size = len(NatureTokenizer())
    counts = param_count(config, vocab_size)
    if as_json:
        typer.echo(json.dumps(counts, indent=1))
        return
    for key, value in counts.items():
        shown = f"{value:,}" if isinstance(value, int) and key.endswith("params") else value
        typer.echo(f"{key:24s} {shown}")


@app.command()
def expand(base: Path = typer.Option(..., help="HF causal-LM directory with a fast tokenizer (tokenizer.json)"),
           out: Path = typer.Option(..., help="where the expanded HF directory is written"),
           seed: int = typer.Option(0, help="seed of the new rows' random initialisation")) -> None:
    """Add the NatureLM tag and science tokens to a base model (new rows random) for stage-1 training."""
    from naturelm.model.expand import expand_base

    model, tok = expand_base(base, out, seed=seed)
    typer.echo(f"vocabulary {len(tok) - len(tok.new_token_ids)} -> {len(tok)} "
               f"({len(tok.new_token_ids)} new rows) -> {out}")


@app.command("merge-lora")
def merge_lora(adapter: Path = typer.Option(..., help="run directory of a LoRA training run (adapter_config.json)"),
               out: Path = typer.Option(..., help="where the merged HF directory is written"),
               base: Optional[Path] = typer.Option(None, help="base model dir; default: the adapter's base path")) -> None:
    """Merge a LoRA adapter into its base model: a plain HF directory loadable without peft."""
    from naturelm.train.lora import merge_lora as merge

    typer.echo(f"merged -> {merge(adapter, out, base)}")
