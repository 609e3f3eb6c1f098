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
def corpus(
    input: list[str] = typer.Option([], "--input", help="DOMAIN=PATH[::format=..,column=..,spacegroup_column=..,name=..]; "
                                    "PATH a file, folder or glob; domains protein dna rna molecule reaction material text"),
    out: str = typer.Option(..., help="output folder (pretrain/index.json + shards, tokenizer/, card.json)"),
    recipe: Optional[str] = typer.Option(None, help="YAML recipe with inputs and settings (--input adds inputs)"),
    weights: list[str] = typer.Option([], help="DOMAIN=W[,DOMAIN=W...] mixture weights (default: every document once)"),
    tokens: Optional[int] = typer.Option(None, help="training-token budget of the mixture (default: the unique tokens)"),
    max_repeats: Optional[int] = typer.Option(None, help="most copies of one document when upweighted (default 4)"),
    exclude: list[str] = typer.Option([], help="test entities to drop: a built data dir, an instruction JSONL or a key file"),
    seed: Optional[int] = typer.Option(None, help="shuffle / split / mixture seed (default 0)"),
    valid_fraction: Optional[float] = typer.Option(None, help="entities held out for the valid split (default 0.01)"),
    block_size: Optional[int] = typer.Option(None, help="training block size written to the index (default 512)"),
    max_chars: Optional[int] = typer.Option(None, help="reject records longer than this (default: no limit)"),
    buckets: Optional[int] = typer.Option(None, help="dedup buckets = output shards (default: from the input size)"),
    tokenizer: Optional[str] = typer.Option(None, help="NatureTokenizer directory (default: the shipped vocabulary)"),
    executor: str = typer.Option("local", help="local | slurm | ray (datatrove executors)"),
    workers: int = typer.Option(1, help="processes (local) or concurrent tasks (cluster)"),
    tasks: Optional[int] = typer.Option(None, help="parse tasks (default: workers)"),
    slurm_partition: Optional[str] = typer.Option(None, help="Slurm partition (--executor slurm)"),
    slurm_time: Optional[str] = typer.Option(None, help="Slurm time limit per task, e.g. 04:00:00"),
    cpus_per_task: Optional[int] = typer.Option(None, help="cluster CPUs per task"),
    mem_per_cpu_gb: Optional[float] = typer.Option(None, help="cluster memory per CPU (GB)"),
    venv_path: Optional[str] = typer.Option(None, help="virtualenv the Slurm jobs activate"),
    keep_work: bool = typer.Option(False, help="keep OUT/work intermediate files"),
):
    """Pre-training corpus from your own files, on datatrove: validate, dedup, drop test entities, mix, shard."""
    from naturelm.data.filecorpus.inputs import parse_input
    from naturelm.data.filecorpus.pipeline import CorpusSpec, build_corpus, load_spec, parse_weights, summary

    inputs = [parse_input(s) for s in input]
    settings = {"weights": parse_weights(weights) or None, "tokens": tokens, "max_repeats": max_repeats,
                "exclude": list(exclude) or None, "seed": seed, "valid_fraction": valid_fraction,
                "block_size": block_size, "max_chars": max_chars, "buckets": buckets, "tokenizer": tokenizer}
    if recipe:
        spec = load_spec(recipe, extra_inputs=inputs, **settings)
    else:
        spec = CorpusSpec(inputs=inputs, **{k: v for k, v in settings.items() if v is not None})
    card = build_corpus(spec, out, executor=executor, workers=workers, tasks=tasks, keep_work=keep_work,
                        partition=slurm_partition, time=slurm_time, cpus_per_task=cpus_per_task,
                        mem_per_cpu_gb=mem_per_cpu_gb, venv_path=venv_path)
    if card is None:
        typer.echo(f"submitted the corpus stages to {executor}; {out}/card.json appears when the last stage ends")
    else:
        typer.echo(summary(card))


@app.command()
def retrosim(
    checkpoint: Optional[str] = typer.Option(None, help="look for a RetroSim saved near this checkpoint first"),
    progress: bool = typer.Option(True, help="show progress bars"),
    index: str = typer.Option("standard", help="standard (USPTO-50k's training split) or leak-free (without the "
                              "training reactions whose product is a test product by connectivity)"),
):
    """Fit (once; then cached) the RetroSim index that ranked retrosynthesis uses, from USPTO-50k's training split."""
    import time

    from naturelm.errors import ConfigError
    from naturelm.tasks.baselines.retrosim import INDEXES, find_retrosim

    if index not in INDEXES:
        raise ConfigError(f"--index {index!r} is not one of {', '.join(INDEXES)}")
    t0 = time.perf_counter()
    model = find_retrosim(checkpoint, progress=progress, index=index)
    typer.echo(f"RetroSim ({index} index) ready: {len(model.templates)} training reactions "
               f"({time.perf_counter() - t0:.0f} s)")
