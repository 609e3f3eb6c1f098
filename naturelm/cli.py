"""The one `naturelm` command: each package contributes its sub-commands."""
from __future__ import annotations

import typer

from naturelm.data.cli import app as data_app
from naturelm.eval.cli import app as eval_app
from naturelm.generate.cli import generate
from naturelm.language.cli import tokenize, validate
from naturelm.model.cli import app as model_app
from naturelm.serve.cli import serve
from naturelm.train.cli import app as train_app

app = typer.Typer(help="NatureLM: one language model for text, molecules, reactions, proteins, DNA, RNA and materials.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("tokenize")(tokenize)
app.command("validate")(validate)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")
app.add_typer(train_app, name="train")
app.command("generate")(generate)
app.add_typer(eval_app, name="eval")
app.command("serve")(serve)


@app.command()
def demo() -> None:
    """A short tour: the language now, the shipped model when present."""
    from naturelm.demo import main

    main()


if __name__ == "__main__":
    app()
