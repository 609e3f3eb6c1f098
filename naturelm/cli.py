"""The one `naturelm` command: each package contributes its sub-commands."""
from __future__ import annotations

import typer

from naturelm.language.cli import tokenize, validate

app = typer.Typer(help="NatureLM: one language model for text, molecules, reactions, proteins, DNA, RNA and materials.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("tokenize")(tokenize)
app.command("validate")(validate)


@app.command()
def demo() -> None:
    """A short tour: the language now, the shipped model when present."""
    from naturelm.demo import main

    main()


if __name__ == "__main__":
    app()
