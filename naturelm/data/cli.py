"""`naturelm data ...` commands (registered by naturelm/cli.py as `app.add_typer(data_app, name="data")`)."""
from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(help="Build the training data: instruction sets, pre-training corpus, data card.", no_args_is_help=True)


@app.callback()
def main():
    """Build the training data from real offline sources (see docs/data.md)."""


@app.command()
def build(
    recipe: str = typer.Option("tiny", help="tiny | full | path to a recipe YAML"),
    out: str = typer.Option(..., help="output folder (card.json, pretrain/, instructions/, tokenizer/)"),
    uspto50k: Optional[str] = typer.Option(None, help="USPTO-50k folder or file (default: $NATURELM_USPTO50K or ../shared/data/uspto50k)"),
    progress: bool = typer.Option(True, help="show progress bars"),
):
    """Build DIR from the real sources; prints the card summary."""
    from naturelm.data.build import build as run_build
    from naturelm.data.card import summary
    from naturelm.data.recipes import load_recipe

    card = run_build(load_recipe(recipe), out, uspto_path=uspto50k, progress=progress)
    typer.echo(summary(card))


@app.command()
def retrosim(
    checkpoint: Optional[str] = typer.Option(None, help="look for a RetroSim saved near this checkpoint first"),
    progress: bool = typer.Option(True, help="show progress bars"),
):
    """Fit (once; then cached) the RetroSim index that ranked retrosynthesis uses, from USPTO-50k's training split."""
    import time

    from naturelm.tasks.baselines.retrosim import find_retrosim

    t0 = time.perf_counter()
    model = find_retrosim(checkpoint, progress=progress)
    typer.echo(f"RetroSim ready: {len(model.templates)} training reactions ({time.perf_counter() - t0:.0f} s)")
