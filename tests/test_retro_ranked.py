"""Ranked retrosynthesis (issue 8): RetroSim proposes, the model re-ranks as `tasks.ranking.rank_union` does.

A tiny random model and a RetroSim fitted on a handful of USPTO-50k training reactions; "model" unchanged,
"auto" choosing, the typed error without RetroSim, finding/fitting/caching RetroSim, and the server endpoint."""
from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
from collections import Counter

import pytest

from naturelm.errors import ConfigError, DataSourceMissing

pytestmark = pytest.mark.usefixtures("one_thread")
N_TEMPLATES, PER_TEMPLATE, N_PRODUCTS, MIN_CANDIDATES = 40, 3, 3, 5


@pytest.fixture(scope="module")
def reactions(uspto_dir):
    """(test reactions, training reactions): 3 training reactions of each of the 40 commonest templates, and
    the test reactions made by one of those templates."""
    from naturelm.data.sources.uspto50k import load_uspto50k

    data = load_uspto50k(uspto_dir)
    train, test = data.split("train"), data.split("test")
    common = [t for t, _ in Counter(r.template for r in train if r.template).most_common(N_TEMPLATES)]
    subset = [r for t in common for r in [x for x in train if x.template == t][:PER_TEMPLATE]]
    return [r for r in test if r.template in common][:20], subset


@pytest.fixture(scope="module")
def retrosim(reactions):
    from naturelm.tasks.baselines.retrosim import RetroSim

    return RetroSim(processes=1, progress=False).fit(reactions[1])


@pytest.fixture(scope="module")
def products(reactions, retrosim):
    """Test products with at least 5 RetroSim candidates, so that the order matters."""
    out = [r.product for r in reactions[0] if len(retrosim.propose(r.product, 10)) >= MIN_CANDIDATES][:N_PRODUCTS]
    assert len(out) == N_PRODUCTS
    return out


@pytest.fixture()
def no_uspto(tmp_path, monkeypatch):
    """No USPTO-50k (the path lookup points at a missing folder) and an empty naturelm cache."""
    monkeypatch.setenv("NATURELM_USPTO50K", str(tmp_path / "missing"))
    monkeypatch.setenv("NATURELM_CACHE", str(tmp_path / "cache"))


def _opted_in_checkpoint(tiny_checkpoint, tmp_path, retrosim, weight):
    """A copy of the tiny checkpoint with a tuned rank weight and a RetroSim saved next to it."""
    from naturelm.tasks.baselines.retrosim import SAVED_DIR

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    cfg_path = ckpt / "generation_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    cfg_path.write_text(json.dumps({**cfg, "naturelm_rank_weight": weight}))
    retrosim.save(ckpt / SAVED_DIR)
    return ckpt


def test_ranked_is_rank_union_order_of_retrosim_candidates(lm, retrosim, products):
    from naturelm.tasks.ranking import RANK_PRIOR_WEIGHT, rank_union
    from naturelm.tasks.base import Example

    k = 5
    proposals = retrosim.predict("retrosynthesis", products, 10)
    orders = {}
    for weight in (None, 0.0, 1000.0):
        w = RANK_PRIOR_WEIGHT if weight is None else weight
        expected = rank_union(lm, [Example(p) for p in products], proposals, k=k, prior_weight=w)
        got = lm.retrosynthesis(products, k=k, method="ranked", retrosim=retrosim, rank_weight=weight)
        assert [[g.canonical for g in row] for row in got] == [[c.text for c in row] for row in expected]
        for row, exp, props in zip(got, expected, proposals):
            assert [g.score for g in row] == pytest.approx([c.score for c in exp])
            rs_score = {c.text: c.score for c in props}
            for g in row:
                assert g.source == "retrosim+model" and g.valid and g.verified_by == "rdkit" and g.tag == "reactants"
                assert g.meta["retrosim_score"] == pytest.approx(rs_score[g.canonical])
                assert g.meta["rank_weight"] == w
                assert g.score == pytest.approx(g.meta["model_logprob"] + w * g.meta["retrosim_score"])
            assert len(row) == min(k, len(props))
        orders[weight] = [[g.canonical for g in row] for row in got]
        # no prior: the model's log-probability alone orders; a dominant prior: RetroSim's score does
        part = {0.0: "model_logprob", 1000.0: "retrosim_score"}.get(weight)
        for row in got if part else []:
            assert [g.meta[part] for g in row] == sorted((g.meta[part] for g in row), reverse=True)
    assert orders[0.0] != orders[1000.0]  # the weight matters


def test_model_method_is_the_models_beams(lm, monkeypatch, products):
    from naturelm.api import instruction
    from naturelm.tasks.baselines import retrosim as retrosim_module

    short = dict(max_new_tokens=24)
    got = lm.retrosynthesis(products[0], k=3, method="model", **short)
    beams = lm.generate(instruction("retrosynthesis", product=products[0]), num_beams=3, temperature=0.0,
                        expect="reactants", **short)
    assert [(g.key, g.score) for g in got] == [(g.key, g.score) for g in beams]
    assert all(g.source == "model" for g in got)
    # the tiny test checkpoint does not opt in: "auto" is the model's beams and never looks for RetroSim
    monkeypatch.setattr(retrosim_module, "find_retrosim", lambda *a, **kw: pytest.fail("RetroSim was looked for"))
    assert [(g.key, g.score) for g in lm.retrosynthesis(products[0], k=3, **short)] == [(g.key, g.score) for g in got]
    # the Predictor protocol scores the model's own beams (`naturelm eval --rank` adds the ranked row)
    (cands,) = lm.predict("retrosynthesis", [products[0]], 3)
    assert [c.source for c in cands] == ["naturelm"] * len(cands)


def test_auto_ranks_when_retrosim_given(lm, retrosim, products):
    auto = lm.retrosynthesis(products, k=4, retrosim=retrosim)
    ranked = lm.retrosynthesis(products, k=4, method="ranked", retrosim=retrosim)
    assert [[(g.canonical, g.score) for g in row] for row in auto] == [[(g.canonical, g.score) for g in row]
                                                                       for row in ranked]
    assert all(g.source == "retrosim+model" for row in auto for g in row)


def test_rag_delegates(lm, monkeypatch):
    seen = []
    monkeypatch.setattr(type(lm), "retrosynthesis_rag", lambda self, p, k=10, **gen: seen.append((p, k, gen)) or [])
    assert lm.retrosynthesis("CCO", k=2, method="rag", max_new_tokens=8) == []
    assert seen == [("CCO", 2, {"max_new_tokens": 8})]


def test_bad_method_and_retrosim_are_config_errors(lm):
    with pytest.raises(ConfigError, match="auto, model, ranked, rag"):
        lm.retrosynthesis("CCO", method="best")
    with pytest.raises(ConfigError, match="retrosim="):
        lm.retrosynthesis("CCO", method="ranked", retrosim=42)


def test_ranked_without_retrosim_is_a_typed_error(tiny_checkpoint, lm, no_uspto, tmp_path):
    from naturelm.api import NatureLM

    fresh = NatureLM(lm.model, lm.tokenizer, path=tiny_checkpoint)
    with pytest.raises(DataSourceMissing, match="pass retrosim="):
        fresh.retrosynthesis("CCO", k=2, method="ranked")
    with pytest.raises(DataSourceMissing, match="retrosim.json"):
        fresh.retrosynthesis("CCO", k=2, method="ranked", retrosim=tmp_path / "nowhere")
    with pytest.raises(DataSourceMissing):  # an explicit RetroSim that is not there fails "auto" too
        fresh.retrosynthesis("CCO", k=2, retrosim=tmp_path / "nowhere")
    # a checkpoint that opts in but finds no RetroSim: "auto" answers with the model's beams
    opted = NatureLM(lm.model, lm.tokenizer, path=tiny_checkpoint, rank_weight=5.0)
    gens = opted.retrosynthesis("CCO", k=2, max_new_tokens=16)
    assert gens and all(g.source == "model" for g in gens)


def test_opted_in_checkpoint_ranks_by_default(tiny_checkpoint, tmp_path, retrosim, products, no_uspto):
    from naturelm.api import NatureLM

    ckpt = _opted_in_checkpoint(tiny_checkpoint, tmp_path, retrosim, 2.0)
    lm2 = NatureLM.load(ckpt)
    assert lm2.rank_weight == 2.0 and lm2.path == ckpt
    auto = lm2.retrosynthesis(products[0], k=3)
    explicit = lm2.retrosynthesis(products[0], k=3, method="ranked", retrosim=retrosim, rank_weight=2.0)
    assert [(g.canonical, g.score) for g in auto] == [(g.canonical, g.score) for g in explicit]
    assert auto and all(g.source == "retrosim+model" and g.meta["rank_weight"] == 2.0 for g in auto)
    (ckpt / "generation_config.json").write_text(json.dumps({"naturelm_rank_weight": "high"}))
    with pytest.raises(ConfigError, match="naturelm_rank_weight"):
        NatureLM.load(ckpt)


def _write_mhn(path, records):
    with gzip.open(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "class", "prod_smiles", "reactants_can", "split", "reaction_smarts"])
        for r in records:
            w.writerow([r.id, r.rxn_class, r.product, r.reactants, r.split, r.template])


def test_find_retrosim_fits_once_then_reads_the_cache(tmp_path, monkeypatch, reactions):
    from naturelm.data.sources.uspto50k import MHN_FILE
    from naturelm.tasks.baselines import retrosim as rs_module

    (tmp_path / "uspto").mkdir()
    _write_mhn(tmp_path / "uspto" / MHN_FILE, reactions[1])
    monkeypatch.setenv("NATURELM_USPTO50K", str(tmp_path / "uspto"))
    monkeypatch.setenv("NATURELM_CACHE", str(tmp_path / "cache"))
    fitted = rs_module.find_retrosim(None)
    assert len(fitted) == len(reactions[1]) and fitted.processes == 1 and fitted.ids == [r.id for r in reactions[1]]
    assert (tmp_path / "cache" / "template_indices" / "retrosim" / "manifest.json").is_file()
    monkeypatch.setattr(rs_module.RetroSim, "fit", lambda *a: pytest.fail("fitted again instead of cached"))
    cached = rs_module.find_retrosim(None)
    assert cached.templates == fitted.templates and cached.ids == fitted.ids


def test_saved_near_finds_the_checkpoints_data_build(tmp_path, monkeypatch, retrosim):
    from naturelm.tasks.baselines.retrosim import SAVED_DIR, saved_near

    ckpt, build = tmp_path / "ckpt", tmp_path / "data_build" / "b1"
    ckpt.mkdir()
    retrosim.save(build / SAVED_DIR)
    (build / "card.json").write_text('{"recipe": "tiny"}')
    monkeypatch.chdir(tmp_path)
    assert saved_near(ckpt) is None  # no data card: nothing to match
    (ckpt / "data_card.json").write_text('{"recipe": "other"}')
    assert saved_near(ckpt) is None  # a different data build
    (ckpt / "data_card.json").write_text('{"recipe": "tiny"}')
    assert saved_near(ckpt) == build / SAVED_DIR
    retrosim.save(ckpt / SAVED_DIR)
    assert saved_near(ckpt) == ckpt / SAVED_DIR  # one next to the checkpoint comes first


def test_server_endpoint_takes_method_and_reports_source(tiny_checkpoint, tmp_path, retrosim, products, no_uspto):
    from fastapi.testclient import TestClient

    from naturelm.api import NatureLM
    from naturelm.serve.app import ServeConfig, create_app

    cfg = ServeConfig(model_name="tiny", max_new_tokens=32, default_new_tokens=16, task_new_tokens=16, max_n=8)
    opted = NatureLM.load(_opted_in_checkpoint(tiny_checkpoint, tmp_path, retrosim, 5.0))
    with TestClient(create_app(opted, cfg)) as client:
        for method, source in (("ranked", "retrosim+model"), ("auto", "retrosim+model"), ("model", "model")):
            r = client.post("/v1/tasks/retrosynthesis", json={"product": products[0], "k": 3, "method": method})
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert results and all(g["source"] == source for g in results), (method, results)
            if source == "retrosim+model":
                assert all(g["valid"] and math.isfinite(g["meta"]["retrosim_score"]) for g in results)
        r = client.post("/v1/tasks/retrosynthesis", json={"product": products[0], "method": "best"})
        assert r.status_code == 422 and "method" in r.text
    plain = NatureLM.load(tiny_checkpoint)
    with TestClient(create_app(plain, cfg)) as client:
        r = client.post("/v1/tasks/retrosynthesis", json={"product": products[0], "k": 2, "method": "ranked"})
        assert r.status_code == 422 and "retrosim=" in r.json()["error"]["message"]
        r = client.post("/v1/tasks/retrosynthesis", json={"product": products[0], "k": 2})
        assert r.status_code == 200 and all(g["source"] == "model" for g in r.json()["results"])
