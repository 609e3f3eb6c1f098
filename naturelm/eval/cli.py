"""`naturelm eval`: score checkpoints and baselines side by side; `naturelm eval compare` merges two runs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from naturelm.tasks.ranking import RANK_PRIOR_WEIGHT

app = typer.Typer(help="Evaluate models on the NatureLM task suite.", invoke_without_command=True,
                  pretty_exceptions_enable=False)


@app.callback()
def evaluate(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="comma list: checkpoint dirs and/or baselines "
                                        "(retrosim, retrosim-leakfree, templates, smact, nispo, openclatura, rules, "
                                        "opsin)"),
    tasks: str = typer.Option("all", "--tasks", "-t", help="comma list of task names, or 'all'"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="built data dir (naturelm data build --out DIR)"),
    out: Path = typer.Option(Path("eval_out"), "--out", "-o", help="output dir (results.json, report.md, plots/)"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="test examples (samples for unconditional tasks)"),
    k: int = typer.Option(10, "--k", help="candidates per input for top-k tasks"),
    samples: Optional[int] = typer.Option(None, "--samples", help="override samples per input of sampling tasks"),
    rank: bool = typer.Option(False, "--rank", help="retrosynthesis / forward / composition_to_material: also rank "
                              "the candidates of the model and of its tool (--model retrosim, retrosim-leakfree / "
                              "templates / smact) with the model"),
    rank_weight: float = typer.Option(RANK_PRIOR_WEIGHT, "--rank-weight", help="--rank: weight of RetroSim's score "
                                      "beside the model's log-probability (tune it with bench/retro_ranking.py)"),
    forward_rank_weight: Optional[float] = typer.Option(None, "--forward-rank-weight", help="--rank, forward: weight "
                                                        "of the template score (default the checkpoint's "
                                                        "naturelm_forward_rank_weight, else 8; tune it with "
                                                        "bench/forward_ranking.py --limit 0 --pool union)"),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="sampling temperature of "
                                                "checkpoints on sampled and unconditional tasks (default 0.7)"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="checkpoints: fp16, int8, int8-dynamic or int4 "
                                           "quantized CPU decoding; gguf-f16, gguf-q8_0 or gguf-q4_0: decoding on "
                                           "llama.cpp (docs/inference.md); default: as stored"),
    list_tasks: bool = typer.Option(False, "--list", help="list the tasks and exit"),
) -> None:
    """Run `naturelm eval --model PATH[,retrosim,...] --tasks t1,t2|all --data DIR --out DIR`."""
    if ctx.invoked_subcommand is not None:
        return
    if list_tasks:
        from naturelm.tasks.base import get_task, task_names

        for name in task_names():
            t = get_task(name)
            typer.echo(f"{name:26s} {t.kind:13s} {t.domain}")
        return
    if not model:
        raise typer.BadParameter("give --model (a checkpoint dir and/or baseline names)", param_hint="--model")
    from naturelm.eval.harness import run_eval

    doc = run_eval([m for m in model.split(",") if m], tasks=tasks, data=data, out=out, limit=limit, k=k,
                   rank=rank, rank_prior_weight=rank_weight, samples=samples, temperature=temperature,
                   quantize=quantize, forward_rank_weight=forward_rank_weight)
    for m, per_task in doc["results"].items():
        for task, metrics in per_task.items():
            shown = ", ".join(f"{key}={v:.3f}" for key, v in metrics.items() if isinstance(v, float))
            typer.echo(f"{m:24s} {task:24s} {shown}")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.md'}")


@app.command("compare")
def compare_cmd(
    results: list[Path] = typer.Argument(..., help="two or more results.json files"),
    out: Path = typer.Option(Path("eval_compare"), "--out", "-o", help="output dir"),
) -> None:
    """Put several runs side by side in one report."""
    from naturelm.eval.report import compare

    typer.echo(f"wrote {compare(results, out)}")
