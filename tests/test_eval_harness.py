"""The evaluation harness on fake predictors and a tiny built-data dir; one smoke run through a tiny checkpoint."""
from __future__ import annotations

import importlib.util
import json

import pytest

from naturelm.errors import ConfigError
from naturelm.eval.harness import resolve_tasks, run_eval
from naturelm.eval.report import compare
from naturelm.tasks.baselines.base import Candidate

RETRO = [("CC(=O)Nc1ccc(O)cc1", "CC(=O)OC(C)=O.Nc1ccc(O)cc1"), ("CC(=O)OCC", "CC(=O)O.CCO"),
         ("O=C(O)c1ccccc1", "OC(=O)c1ccccc1C(=O)O")]


@pytest.fixture()
def data_dir(tmp_path):
    """A tiny `naturelm data build` output: card + test/train instruction records."""
    d = tmp_path / "data"
    (d / "instructions").mkdir(parents=True)
    (d / "card.json").write_text(json.dumps({"tasks": ["retrosynthesis", "forward", "bbb_classification"]}))
    test = [{"task": "retrosynthesis", "instruction": f"Please suggest possible reactants for the given product <product>{p}</product>",
             "response": f"<reactants>{r}</reactants>", "meta": {"product": p, "reactants": r, "rxn_class": 1}} for p, r in RETRO]
    test += [{"task": "forward", "instruction": "x", "response": f"<product>{p}</product>", "meta": {"reactants": r, "product": p}}
             for p, r in RETRO]
    test += [{"task": "bbb_classification", "instruction": "x", "response": "Yes." if y else "No.",
              "meta": {"smiles": s, "label": y}} for s, y in [("CCO", 1), ("OC(=O)CC(N)C(=O)O", 0), ("CN1CCCC1", 1)]]
    train = [{"task": "molecule_generation", "instruction": "<mol>", "response": "<mol>CCO</mol>", "meta": {}}]
    (d / "instructions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    (d / "instructions" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    return d


class Oracle:
    """Answers from the gold records: the metric must come out perfect through the harness."""

    name = "oracle"

    def __init__(self):
        from naturelm.language.codecs import canonical_smiles

        self.gold = {canonical_smiles(p): r for p, r in RETRO}
        self.calls = 0

    def supports(self, task):
        return task in ("retrosynthesis", "forward", "bbb_classification", "molecule_generation")

    def predict(self, task, inputs, k):
        self.calls += 1
        if task == "retrosynthesis":
            return [[Candidate("CCN"), Candidate(f"<reactants>{self.gold[p]}</reactants>")] for p in inputs]
        if task == "forward":
            from naturelm.language.codecs import canonical_reactant_set

            back = {canonical_reactant_set(r): p for p, r in RETRO}
            return [[Candidate(back[r])] for r in inputs]
        if task == "bbb_classification":
            p = {"CCO": 0.9, "CN1CCCC1": 0.8}
            return [[Candidate("Yes.", meta={"p_yes": p.get(s, 0.1)})] for s in inputs]
        return [[Candidate(s)] for s in ["c1ccccc1", "CCN", "CCCl", "OCCO", "CC#N"][: len(inputs)]]


class Wrong:
    name = "wrong"

    def supports(self, task):
        return task in ("retrosynthesis", "forward")

    def predict(self, task, inputs, k):
        return [[Candidate("C1CC1(")] if i % 2 else [] for i, _ in enumerate(inputs)]


class FakeRetroSim:
    """Stands in for the RetroSim baseline: the gold at rank 2 behind a wrong answer."""

    name = "retrosim"

    def supports(self, task):
        return task == "retrosynthesis"

    def predict(self, task, inputs, k):
        return Oracle().predict(task, inputs, k)


class Exploding(Oracle):
    def predict(self, task, inputs, k):
        raise AssertionError("should have resumed from stored predictions")


def test_side_by_side_results_report_and_plots(data_dir, tmp_path):
    out = tmp_path / "run"
    oracle = Oracle()
    doc = run_eval([], tasks="retrosynthesis,forward,bbb_classification,molecule_generation", data=data_dir, out=out,
                   limit=5, k=3, progress=False, predictors={"oracle": oracle, "wrong": Wrong()})
    res = doc["results"]
    assert res["oracle"]["retrosynthesis"]["top_1"] == 0.0 and res["oracle"]["retrosynthesis"]["top_3"] == 1.0
    assert res["oracle"]["forward"]["top_1"] == 1.0 and res["oracle"]["bbb_classification"]["auroc"] == 1.0
    assert res["oracle"]["molecule_generation"]["validity"] == 1.0 and res["oracle"]["molecule_generation"]["novelty"] == 1.0
    assert res["wrong"]["retrosynthesis"]["top_3"] == 0.0 and res["wrong"]["forward"]["n"] == 3
    assert "bbb_classification" not in res["wrong"]  # unsupported: no row, not a zero
    assert doc["tasks"]["retrosynthesis"]["ks"] == [1, 3] and doc["tasks"]["molecule_generation"]["n_examples"] == 5
    assert doc["data"]["card_sha256"] and doc["wall_s"]["oracle"]["forward"]["predict"] >= 0
    mol = res["oracle"]["molecule_generation"]  # fcd_torch is a pinned dependency: FCD is a number, never a note
    assert mol["fcd"] >= 0 and mol["fcd_reference_same_n"] >= 0
    assert not any("FCD" in n for n in doc["notes"].get("molecule_generation", []))
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["results"] == json.loads(json.dumps(res))
    report = (out / "report.md").read_text()
    assert "## retrosynthesis" in report and "| oracle |" in report and "| wrong |" in report
    assert (out / "plots" / "retrosynthesis.png").stat().st_size > 1000
    assert (out / "plots" / "molecule_generation.png").is_file()
    lines = (out / "predictions" / "oracle" / "retrosynthesis.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["k"] == 3

    # a second run resumes from the stored predictions (the predictor is never called)
    doc2 = run_eval([], tasks="retrosynthesis,forward", data=data_dir, out=out, limit=5, k=3, progress=False,
                    predictors={"oracle": Exploding()})
    assert doc2["results"]["oracle"]["retrosynthesis"] == res["oracle"]["retrosynthesis"]

    # two runs side by side
    out_b = tmp_path / "run_b"
    run_eval([], tasks="forward", data=data_dir, out=out_b, progress=False, predictors={"oracle": Oracle()})
    path = compare([out / "results.json", out_b / "results.json"], tmp_path / "cmp")
    merged = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert set(merged["results"]) == {"oracle", "oracle (run_b)"}  # run A was re-written by the resumed run
    assert "| oracle (run_b) |" in path.read_text()


class ShortestFirst(Oracle):
    """A ranker: orders the merged pool by length (what NatureLM.rank does by log-probability)."""

    name = "ranker"

    def supports(self, task):
        return task == "retrosynthesis"

    def predict(self, task, inputs, k):
        return [[Candidate("C" * 40 + "N")] for _ in inputs]

    def rank(self, prompt, candidates, tag=None):
        from types import SimpleNamespace

        from naturelm.tasks.base import entity_of

        seen = dict.fromkeys(entity_of(c.text) for c in candidates)
        return [SimpleNamespace(canonical=t, entity=t, score=-len(t), valid=True, source="") for t in sorted(seen, key=len)]


def test_rank_merges_model_and_retrosim(data_dir, tmp_path):
    doc = run_eval([], tasks="retrosynthesis", data=data_dir, out=tmp_path / "r", k=2, rank=True, progress=False,
                   predictors={"ranker": ShortestFirst(), "retrosim": FakeRetroSim()})
    res = doc["results"]
    assert res["ranker"]["retrosynthesis"]["top_2"] == 0.0 and res["retrosim"]["retrosynthesis"]["top_1"] == 0.0
    merged = res["ranker+retrosim (ranked)"]["retrosynthesis"]
    assert merged["top_2"] == 1.0 and merged["top_1"] == 0.0  # CCN first (shortest), then the gold
    assert "ranker+retrosim (ranked)" in (tmp_path / "r" / "report.md").read_text()


class ForwardRanker(ShortestFirst):
    def supports(self, task):
        return task == "forward"


class FakeTemplates:
    """Stands in for the forward template tool: methane (short, score 0) ahead of the gold product (score 1)."""

    name = "templates"

    def supports(self, task):
        return task == "forward"

    def predict(self, task, inputs, k):
        from naturelm.language.codecs import try_canonical

        product = {try_canonical(r, reactant_set=True): try_canonical(p) for p, r in RETRO}
        return [[Candidate("C", 0.0, "templates"), Candidate(product[q], 1.0, "templates")] for q in inputs]


@pytest.mark.parametrize("weight, top_1", [(0.0, 0.0), (100.0, 1.0)])
def test_forward_rank_weight_reaches_the_ranked_row(data_dir, tmp_path, weight, top_1):
    """The template weight given to run_eval orders the forward ranked row and is recorded in the settings."""
    doc = run_eval([], tasks="forward", data=data_dir, out=tmp_path / "f", k=3, rank=True, progress=False,
                   predictors={"ranker": ForwardRanker(), "templates": FakeTemplates()}, forward_rank_weight=weight)
    assert doc["results"]["ranker+templates (ranked)"]["forward"]["top_1"] == top_1  # w 0: methane, the shortest
    assert doc["settings"]["rank_weights"] == {"ranker+templates (ranked)": {"forward": weight}}


class RoundTripRanker(ForwardRanker):
    """A checkpoint with a round-trip share of 1: its round trip (the batched retrosynthesis prompts) scores 0 for a
    gold product and -10 for any other, so it prefers the gold to methane, which its forward order puts first."""

    forward_retro_weight = 1.0

    def rank(self, prompt, candidates, tag=None):
        from types import SimpleNamespace

        from naturelm.language.codecs import try_canonical

        if isinstance(prompt, list):
            assert tag == "reactants" and all(len(pool) == 1 for pool in candidates)
            golds = {try_canonical(p) for p, _ in RETRO}
            return [[SimpleNamespace(score=0.0 if any(f">{g}<" in p for g in golds) else -10.0)] for p in prompt]
        return super().rank(prompt, candidates, tag)


def test_the_checkpoint_round_trip_share_reaches_the_ranked_forward_row(data_dir, tmp_path):
    doc = run_eval([], tasks="forward", data=data_dir, out=tmp_path / "f", k=3, rank=True, progress=False,
                   predictors={"ranker": RoundTripRanker(), "templates": FakeTemplates()}, forward_rank_weight=0.0)
    assert doc["results"]["ranker+templates (ranked)"]["forward"]["top_1"] == 1.0  # w 0, r 1: the round trip's pick
    assert doc["settings"]["rank_weights"] == {"ranker+templates (ranked)": {"forward": 0.0, "forward_retro": 1.0}}


def test_errors_name_the_fix(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown task"):
        resolve_tasks("retrosynthesis,nope")
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        run_eval(["no/such/dir"], tasks="forward", data=data_dir, out=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="no model"):
        run_eval([], tasks="forward", data=data_dir, out=tmp_path / "x", progress=False)
    assert resolve_tasks("all")[0] == "retrosynthesis"


def test_a_failing_model_is_recorded_not_fatal(data_dir, tmp_path):
    doc = run_eval([], tasks="forward", data=data_dir, out=tmp_path / "f", progress=False,
                   predictors={"boom": Exploding(), "oracle": Oracle()})
    assert doc["results"]["boom"]["forward"]["error"].startswith("AssertionError")
    assert doc["results"]["oracle"]["forward"]["top_1"] == 1.0
    assert "boom failed" in doc["notes"]["forward"][0] and "failed:" in (tmp_path / "f" / "report.md").read_text()
    with pytest.raises(AssertionError):
        run_eval([], tasks="forward", data=data_dir, out=tmp_path / "g", progress=False, predictors={"boom": Exploding()},
                 fail_fast=True)


def test_cli_with_the_opsin_baseline(tmp_path):
    import typer
    from typer.testing import CliRunner

    from naturelm.eval.cli import app as eval_app

    d = tmp_path / "data"
    (d / "instructions").mkdir(parents=True)
    recs = [{"task": "iupac_to_smiles", "instruction": "x", "response": f"<mol>{s}</mol>", "meta": {"smiles": s, "name": n}}
            for s, n in [("CCO", "ethanol"), ("OC(=O)c1ccccc1", "benzoic acid")]]
    (d / "instructions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    root = typer.Typer()
    root.add_typer(eval_app, name="eval")
    out = tmp_path / "out"
    r = CliRunner().invoke(root, ["eval", "--model", "opsin", "--tasks", "iupac_to_smiles", "--data", str(d), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["results"]["opsin"]["iupac_to_smiles"]["top_1"] == 1.0
    r = CliRunner().invoke(root, ["eval", "compare", str(out / "results.json"), str(out / "results.json"), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0 and (tmp_path / "c" / "report.md").is_file()
    r = CliRunner().invoke(root, ["eval", "--list"])
    assert "guide_rna" in r.output


@pytest.mark.skipif(importlib.util.find_spec("naturelm.api") is None, reason="naturelm/api.py (the engine) not written yet")
def test_smoke_tiny_checkpoint(tiny_checkpoint, data_dir, tmp_path, short_generation):
    out = tmp_path / "tiny"
    doc = run_eval([str(tiny_checkpoint)], tasks="retrosynthesis,bbb_classification,molecule_generation", data=data_dir,
                   out=out, limit=2, k=2, progress=False, rank=True, predictors={"retrosim": FakeRetroSim()})
    row = doc["results"][tiny_checkpoint.name]
    ranked = doc["results"][f"{tiny_checkpoint.name}+retrosim (ranked)"]["retrosynthesis"]
    assert ranked["n"] == 2 and 0.0 <= ranked["top_2"] <= 1.0  # a random model orders the pool arbitrarily
    assert set(row) == {"retrosynthesis", "bbb_classification", "molecule_generation"}
    assert 0.0 <= row["retrosynthesis"]["top_1"] <= 1.0 and row["retrosynthesis"]["n"] == 2
    assert 0.0 <= row["bbb_classification"]["auroc"] <= 1.0 and row["molecule_generation"]["n"] == 2
    assert (out / "report.md").is_file()


def test_temperature_reaches_the_sampler_and_keys_stored_predictions(tiny_checkpoint, data_dir, tmp_path, monkeypatch):
    from naturelm.api import NatureLM

    seen = []
    real = NatureLM.generate

    def spy(self, prompts, **kw):
        kw.update(max_new_tokens=8, max_retries=0)
        seen.append(kw.get("temperature", self.temperature))
        return real(self, prompts, **kw)

    monkeypatch.setattr(NatureLM, "generate", spy)
    out = tmp_path / "t"
    doc = run_eval([str(tiny_checkpoint)], tasks="molecule_generation", data=data_dir, out=out, limit=2,
                   progress=False, temperature=0.3)
    assert doc["settings"]["temperature"] == 0.3 and seen and set(seen) == {0.3}
    marker = json.loads((out / "predictions" / tiny_checkpoint.name / "source.json").read_text())
    assert marker["temperature"] == 0.3
    seen.clear()
    run_eval([str(tiny_checkpoint)], tasks="molecule_generation", data=data_dir, out=out, limit=2, progress=False,
             temperature=0.3)
    assert seen == []  # same temperature: the stored predictions are reused
    run_eval([str(tiny_checkpoint)], tasks="molecule_generation", data=data_dir, out=out, limit=2, progress=False)
    assert seen and set(seen) == {0.7}  # another temperature: predicted afresh at the default
