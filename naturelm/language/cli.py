"""`naturelm tokenize` and `naturelm validate`: the sequence language from the shell."""
from __future__ import annotations

import json

import typer

from naturelm.errors import NatureLMError


def tokenize(text: str = typer.Argument(..., help="Text with tagged entities, e.g. '<mol>CCO</mol>'"),
             ids: bool = typer.Option(False, help="Print ids instead of token strings")) -> None:
    """Tokenize text with the default NatureTokenizer."""
    from naturelm.language import NatureTokenizer

    tok = NatureTokenizer()
    try:
        out = tok.encode(text) if ids else tok.tokenize(text)
    except NatureLMError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(out, ensure_ascii=False))


def validate(domain: str = typer.Argument(..., help="molecule | protein | dna | rna | material"),
             entity: str = typer.Argument(..., help="the entity; a material as its tokens ('Li Fe P O O O O <sg62>') "
                                                    "or as a formula ('LiFePO4')")) -> None:
    """Validate and canonicalise one entity."""
    from naturelm.language.codecs import formula_to_material, get_codec

    try:
        if domain == "material" and len(entity.split()) == 1 and not entity.startswith("<"):
            entity = formula_to_material(entity)  # a formula, as the demo takes it (no space group)
        typer.echo(get_codec(domain).canonicalize(entity))
    except (NatureLMError, KeyError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
