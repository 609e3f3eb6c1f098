"""`naturelm validate`: a material as a formula, DNA without U."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from naturelm.cli import app


@pytest.mark.parametrize("args,code,needle", [
    (["material", "LiFePO4"], 0, "Li Fe P O O O O <sgNone>"),  # a formula, as the demo takes it
    (["material", "Li Fe P O O O O <sg62>"], 0, "<sg62>"),
    (["material", "Xy2"], 2, "not an element"),
    (["dna", "acgt"], 0, "ACGT"),
    (["dna", "ACGU"], 2, "position 3"),  # uracil is RNA
    (["rna", "ACGU"], 0, "ACGU"),
])
def test_validate(args, code, needle):
    out = CliRunner().invoke(app, ["validate", *args])
    assert out.exit_code == code and needle in out.output
