"""`naturelm generate`: answer one instruction from the command line."""
from __future__ import annotations

import json

import typer

app = typer.Typer(help="Generate with a NatureLM checkpoint.")


def generate(
    instruction: str = typer.Argument(..., help="the instruction, or with --raw the bare prompt (e.g. '<mol>')"),
    model: str = typer.Option(..., "--model", "-m", help="checkpoint directory (ours or a released NatureLM one)"),
    n: int = typer.Option(1, "--n", help="samples to draw"),
    beams: int = typer.Option(1, "--beams", help="beam search returning this many distinct candidates"),
    temperature: float = typer.Option(0.7, "--temperature", help="0 for greedy"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    raw: bool = typer.Option(False, "--raw", help="send the prompt as is, not in the Instruction/Response format"),
    unconstrained: bool = typer.Option(False, "--unconstrained", help="turn off constrained decoding"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    quantize: str = typer.Option(None, "--quantize", help="fp16, int8, int8-dynamic or int4: quantized CPU decoding; gguf-f16, gguf-q8_0 or gguf-q4_0: decoding on llama.cpp (docs/inference.md); default: as stored"),
    as_json: bool = typer.Option(False, "--json", help="print JSON records instead of a table"),
) -> None:
    """Generate candidates for one instruction and print them, checked and scored."""
    from naturelm.api import NatureLM

    lm = NatureLM.load(model, device=device, quantize=quantize)
    gens = lm.generate(instruction, n=n, num_beams=beams, temperature=temperature, top_p=top_p,
                       max_new_tokens=max_new_tokens, raw=raw, constrained=not unconstrained, seed=seed)
    if as_json:
        typer.echo(json.dumps([g.to_dict() for g in gens], indent=1))
        return
    for i, g in enumerate(gens, 1):
        flag = "valid" if g.valid else "invalid"
        retry = f" retries={g.retries}" if g.retries else ""
        typer.echo(f"{i}. [{flag} {g.verified_by or '-'} score={g.score:.3f}{retry}] {g.canonical or g.entity}")


app.command("generate")(generate)
