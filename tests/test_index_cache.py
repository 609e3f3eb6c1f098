"""Template indices cached on disk (naturelm.tasks.baselines.index_cache) and RetroSim's leak-free index.

A small USPTO-50k file written from real reactions: RetroSim and ForwardTemplates fit once, then load from the cache
with the same answers; a changed source, a bumped version, a damaged or extra file is refitted, not trusted.
"""
from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from dataclasses import replace

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def picked(uspto_dir):
    """(test reaction, training reactions): a test reaction whose template no training reaction of the subset
    shares, the identical reaction copied into train (the leak), and 12 training reactions of other templates."""
    from naturelm.data.sources.uspto50k import load_uspto50k

    data = load_uspto50k(uspto_dir)
    train = data.split("train")
    counts = Counter(r.template for r in train if r.template)
    common = [t for t, _ in counts.most_common(12)]
    others = [next(r for r in train if r.template == t) for t in common]
    test = next(r for r in data.split("test") if r.template and r.template not in common)
    leak = replace(test, id=f"{test.id}-copy", split="train")
    return test, [leak] + others


def _write_mhn(folder, records):
    from naturelm.data.sources.uspto50k import MHN_FILE

    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / MHN_FILE, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "class", "prod_smiles", "reactants_can", "split", "reaction_smarts"])
        for r in records:
            w.writerow([r.id, r.rxn_class, r.product, r.reactants, r.split, r.template])
    return folder


@pytest.fixture()
def source(tmp_path, monkeypatch, picked):
    monkeypatch.setenv("NATURELM_CACHE", str(tmp_path / "cache"))
    test, train = picked
    return _write_mhn(tmp_path / "uspto", train + [test])


def _no_fit(monkeypatch, cls):
    monkeypatch.setattr(cls, "fit", lambda *a, **kw: pytest.fail(f"{cls.__name__} fitted again instead of cached"))


def test_retrosim_round_trip_through_the_cache(source, tmp_path, monkeypatch, picked):
    from naturelm.tasks.baselines import retrosim as rs

    fitted = rs.cached_retrosim("standard", source, processes=1)
    folder = tmp_path / "cache" / "template_indices" / "retrosim"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] and len(manifest["source_sha256"]) == 64 and "retrosim.json" in manifest["files"]
    _no_fit(monkeypatch, rs.RetroSim)
    cached = rs.cached_retrosim("standard", source, processes=1)
    assert (cached.templates, cached.ids, cached.index) == (fitted.templates, fitted.ids, "standard")
    product = picked[0].product
    assert [(c.text, c.score) for c in cached.propose(product, 5)] == [(c.text, c.score) for c in fitted.propose(product, 5)]


def test_forward_templates_round_trip_through_the_cache(source, monkeypatch, picked):
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates

    fitted = ForwardTemplates.from_uspto50k(source)
    _no_fit(monkeypatch, ForwardTemplates)
    cached = ForwardTemplates.from_uspto50k(source)
    assert (cached.templates, cached.ids, cached.reactant_sets) == (fitted.templates, fitted.ids, fitted.reactant_sets)
    query = picked[1][1].reactants
    assert [(c.text, c.score) for c in cached.propose(query, 5)] == [(c.text, c.score) for c in fitted.propose(query, 5)]


def _fits(monkeypatch, cls) -> list:
    """Count fits of `cls` (still fitting)."""
    calls, real = [], cls.fit

    def counted(self, *a, **kw):
        calls.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(cls, "fit", counted)
    return calls


@pytest.mark.parametrize("damage", ["truncate npz", "bad manifest", "extra file", "missing file", "edit json"])
def test_a_damaged_cache_is_refitted(source, tmp_path, monkeypatch, damage):
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates

    fitted = ForwardTemplates.from_uspto50k(source)
    folder = tmp_path / "cache" / "template_indices" / "forward_templates"
    if damage == "truncate npz":
        npz = folder / "products.npz"
        npz.write_bytes(npz.read_bytes()[:40])
    elif damage == "bad manifest":
        (folder / "manifest.json").write_text("{not json")
    elif damage == "extra file":
        (folder / "stray.json").write_text("{}")
    elif damage == "missing file":
        (folder / "reactants.json").unlink()
    else:  # same length, different content: the recorded sha256 no longer matches
        info = json.loads((folder / "forward_templates.json").read_text())
        info["templates"] = list(reversed(info["templates"]))
        (folder / "forward_templates.json").write_text(json.dumps(info))
    calls = _fits(monkeypatch, ForwardTemplates)
    with pytest.warns(UserWarning, match="refitting"):
        again = ForwardTemplates.from_uspto50k(source)
    assert calls == [1] and again.templates == fitted.templates
    calls.clear()
    ForwardTemplates.from_uspto50k(source)  # repaired: read from the cache again
    assert calls == []


def test_a_stale_cache_is_refitted(source, monkeypatch, picked):
    from naturelm.tasks.baselines import index_cache
    from naturelm.tasks.baselines.retrosim import RetroSim, cached_retrosim

    test, train = picked
    assert len(cached_retrosim("standard", source, processes=1)) == len(train)
    _write_mhn(source, train[:-1] + [test])  # the source changed: one training reaction fewer
    calls = _fits(monkeypatch, RetroSim)
    with pytest.warns(UserWarning, match="source_sha256 changed"):
        assert len(cached_retrosim("standard", source, processes=1)) == len(train) - 1
    monkeypatch.setattr(index_cache, "VERSION", index_cache.VERSION + 1)  # what an index holds changed
    with pytest.warns(UserWarning, match="version changed"):
        cached_retrosim("standard", source, processes=1)
    assert calls == [1, 1]


def test_leak_free_index_drops_the_test_product_and_its_hit(source, picked):
    """The test product's own reaction sits in train: the standard index answers it first; the leak-free one
    holds no reaction with that product (by connectivity) and, with no other reaction of its template, misses."""
    from naturelm.data.splits import mol_key
    from naturelm.tasks.baselines.retrosim import cached_retrosim

    test, train = picked
    standard = cached_retrosim("standard", source, processes=1)
    leak_free = cached_retrosim("leak-free", source, processes=1)
    assert leak_free.index == "leak-free" and len(leak_free) == len(standard) - 1
    assert mol_key(test.product) not in {mol_key(s) for s in leak_free.products.smiles}
    truth = mol_key(test.reactants)
    assert mol_key(standard.propose(test.product, 10)[0].text) == truth
    assert truth not in {mol_key(c.text) for c in leak_free.propose(test.product, 10)}


def test_eval_rows_name_the_leak_free_index(source, tmp_path, monkeypatch, picked):
    from naturelm.eval.harness import run_eval

    monkeypatch.setenv("NATURELM_USPTO50K", str(source))
    test = picked[0]
    d = tmp_path / "data"
    (d / "instructions").mkdir(parents=True)
    rec = {"task": "retrosynthesis", "response": f"<reactants>{test.reactants}</reactants>",
           "instruction": f"Please suggest possible reactants for the given product <product>{test.product}</product>",
           "meta": {"product": test.product, "reactants": test.reactants, "rxn_class": test.rxn_class}}
    (d / "instructions" / "test.jsonl").write_text(json.dumps(rec) + "\n")
    doc = run_eval(["retrosim", "retrosim-leakfree"], tasks="retrosynthesis", data=d, out=tmp_path / "out", k=3,
                   progress=False)
    assert doc["results"]["retrosim"]["retrosynthesis"]["top_1"] == 1.0
    assert doc["results"]["retrosim-leakfree"]["retrosynthesis"]["top_3"] == 0.0
    assert doc["settings"]["retrieval_indexes"] == {"retrosim": "standard", "retrosim-leakfree": "leak-free"}


def test_ranked_retrosynthesis_on_the_leak_free_index(source, monkeypatch, picked, tiny_checkpoint):
    """`retrosynthesis(retrosim_index="leak-free")` ranks the leak-free index's candidates and says so."""
    from naturelm.api import NatureLM
    from naturelm.data.splits import mol_key

    monkeypatch.setenv("NATURELM_USPTO50K", str(source))
    lm = NatureLM.load(tiny_checkpoint)
    test = picked[0]
    standard = lm.retrosynthesis(test.product, k=10, method="ranked")
    leak_free = lm.retrosynthesis(test.product, k=10, retrosim_index="leak-free")
    assert {g.source for g in standard} == {"retrosim+model"}
    assert mol_key(test.reactants) in {mol_key(g.canonical) for g in standard}
    assert mol_key(test.reactants) not in {mol_key(g.canonical) for g in leak_free if g.valid}
    other = lm.retrosynthesis(picked[1][1].product, k=3, retrosim_index="leak-free")  # a product it does hold
    assert other and {g.source for g in leak_free + other} == {"retrosim-leakfree+model"}
    with pytest.raises(Exception, match="not both"):
        lm.retrosynthesis(test.product, retrosim=lm._retrosim_for(), retrosim_index="leak-free")


def test_data_retrosim_command_builds_the_leak_free_index(source, monkeypatch, picked):
    from typer.testing import CliRunner

    from naturelm.data.cli import app

    monkeypatch.setenv("NATURELM_USPTO50K", str(source))
    r = CliRunner().invoke(app, ["retrosim", "--index", "leak-free", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert f"RetroSim (leak-free index) ready: {len(picked[1]) - 1} training reactions" in r.output
    r = CliRunner().invoke(app, ["retrosim", "--index", "leaky"])
    assert r.exit_code != 0
