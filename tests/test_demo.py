"""`naturelm demo`: the language tour and the model tour with its HTML report."""
from __future__ import annotations

from rich.console import Console

from naturelm.demo import language_tour, model_tour, write_report


def test_language_tour_prints_every_domain():
    console = Console(record=True, width=200)
    language_tour(console)
    text = console.export_text()
    for domain in ("molecule", "protein", "dna", "rna", "material"):
        assert domain in text
    assert "SMACT valid" in text and "RDKit parsed" in text


def test_model_tour_answers_every_task_and_writes_the_report(tiny_checkpoint, tmp_path):
    import torch

    from naturelm.api import NatureLM

    torch.set_num_threads(1)
    lm = NatureLM.load(tiny_checkpoint, max_new_tokens=24)
    rows = model_tour(lm)
    tasks = {r["task"] for r in rows}
    assert {"retrosynthesis", "SMILES → IUPAC", "soluble protein", "RNA", "material from Li, Fe, P, O",
            "guide RNA for a DNA target"} <= tasks
    for r in rows:
        assert isinstance(r["valid"], bool) and r["verified_by"]
        if r["valid"]:  # a valid answer names the real tool that checked it
            assert r["verified_by"] in {"rdkit", "opsin", "smact", "alphabet"}
        assert r["verdict"][0] in "✔✘?" and r["source"]  # meets the request, fails (which checks), unverified
        assert (r["meets"] is True) == r["verdict"].startswith("✔")
        if r["task"] == "material from Li, Fe, P, O" and r["meets"]:  # never a composition outside the request
            assert set(r["answer"].split()[:-1]) == {"Li", "Fe", "P", "O"}, r
            assert "precision 1.00, recall 1.00" in r["note"] and "SMACT valid without" in r["note"]
        if r["task"] == "guide RNA for a DNA target":  # the spacer comes from the target by construction
            assert r["meets"] is True and "PAM" in r["note"] and "not NGG" not in r["note"], r
    out = tmp_path / "report.html"
    write_report(rows, out, tiny_checkpoint, 1.0)
    assert "<table>" in out.read_text() and "NatureLM-tiny demo" in out.read_text()
