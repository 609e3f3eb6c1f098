"""The decode engine, constrained decoding and post-processing on a tiny random Llama."""
from __future__ import annotations

import csv
import gzip
import json
import random

import pytest

from naturelm.generate.postprocess import Generation, check, dedup, extract, to_generation

SMILES_TAGS = ("mol", "reactants", "product")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cons(lm):
    return lm.engine.constraints(True)


PROMPTS = ["Please suggest possible reactants for the given product <product>CC(=O)Nc1ccc(O)cc1</product>",
           "What is the IUPAC name of <mol>CCO</mol>?", "Hi"]


# ---------------------------------------------------------------------------------------------- engine
def _hf_greedy(lm, ids, max_new_tokens):
    eng = lm.engine
    stop = eng.constraints(False).stop_ids
    input_ids, mask, _ = eng._left_pad(ids)
    out = lm.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                            eos_token_id=sorted(stop), pad_token_id=lm.tokenizer.pad_token_id)
    rows = []
    for row in out[:, input_ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row) - 1)
        rows.append(row[:cut + 1])
    return rows


def test_greedy_equals_hf_generate(lm):
    ids = lm.engine.encode(PROMPTS) + lm.engine.encode(["<mol>", "<protein>M"], raw=True)
    ours = lm.engine.sample(ids, n=1, temperature=0.0, max_new_tokens=24, constrained=False)
    assert [h.ids for (h,) in ours] == _hf_greedy(lm, ids, 24)


def test_width_one_beam_is_greedy(lm):
    ids = lm.engine.encode(PROMPTS)
    greedy = lm.engine.sample(ids, n=1, temperature=0.0, max_new_tokens=16, constrained=True)
    beam = lm.engine.beam(ids, 1, max_new_tokens=16, constrained=True)
    assert [h.ids for (h,) in greedy] == [hyps[0].ids for hyps in beam]
    assert [h.score for (h,) in greedy] == pytest.approx([hyps[0].score for hyps in beam])


def test_sampling_scores_are_summed_logprobs(lm):
    ids = lm.engine.encode(PROMPTS[:2])
    out = lm.engine.sample(ids, n=3, temperature=1.0, max_new_tokens=12, constrained=False, seed=3)
    for p, hyps in zip(ids, out):
        assert len(hyps) == 3
        lps = lm.engine.logprobs([p] * 3, [h.ids for h in hyps])
        assert [h.score for h in hyps] == pytest.approx([sum(lp) for lp in lps], abs=1e-3)
    again = lm.engine.sample(ids, n=3, temperature=1.0, max_new_tokens=12, constrained=False, seed=3)
    assert [[h.ids for h in r] for r in again] == [[h.ids for h in r] for r in out]  # seeded


def test_beams_are_distinct_and_sorted(lm):
    gens = lm.generate(PROMPTS[:2], num_beams=4, max_new_tokens=20, expect="reactants")
    for row in gens:
        assert len(row) == 4
        assert len({g.key for g in row}) == 4
        assert [g.score for g in row] == sorted((g.score for g in row), reverse=True)
        assert all(g.tag == "reactants" and g.raw.startswith("<reactants>") for g in row)


def test_stops_at_the_closing_tag(lm):
    for gens in lm.generate(["<mol>", "<rna>"], n=4, raw=True, temperature=1.5, max_new_tokens=80):
        for g in gens:
            assert g.raw.count("</") <= 1
            if "</" in g.raw:
                assert g.raw.endswith(f"</{g.tag}>")


# ---------------------------------------------------------------------------------------------- constraints
def _inside_ids(cons, prompt, ids):
    """(domain, id) of every generated token written inside a tag."""
    from naturelm.language.tags import TAGS

    tail = cons.open_tail(prompt)
    tag = cons.open_ids[tail[0]] if tail else None
    out = []
    for t in ids:
        if tag is not None and t not in cons.close_ids:
            out.append((TAGS[tag].domain, t))
        if t in cons.open_ids:
            tag = cons.open_ids[t]
        elif t in cons.close_ids:
            tag = None
    return out


@pytest.mark.parametrize("constrained", [True, False])
def test_no_foreign_token_inside_a_tag(lm, cons, constrained):
    tok = lm.tokenizer
    allowed = {d: set(tok.domain_token_ids(d)) for d in ("molecule", "protein", "dna", "rna", "material")}
    eng = lm.engine
    prompts = eng.encode(["<mol>", "<protein>", "<rna>", "<material>", "<dna>"], raw=True)
    prompts += eng.encode(PROMPTS[:1])
    out = eng.sample(prompts, n=6, temperature=1.5, max_new_tokens=40, constrained=constrained, seed=1)
    out += eng.sample(eng.encode(PROMPTS[:1]), n=6, temperature=1.5, max_new_tokens=40, constrained=constrained,
                      seed=2, expect="reactants")
    prompts += eng.encode(PROMPTS[:1])
    foreign = [(d, t) for p, hyps in zip(prompts, out) for h in hyps for d, t in _inside_ids(cons, p, h.ids)
               if d != "text" and t not in allowed[d]]
    checked = sum(len(_inside_ids(cons, p, h.ids)) for p, hyps in zip(prompts, out) for h in hyps)
    assert checked > 500
    if constrained:
        assert foreign == []
    else:  # the same random model does write foreign tokens when nothing stops it: the check can fail
        assert len(foreign) > 10


def _smiles_units(cons, ids):
    return [cons.unit[t] for t in ids if t in cons.unit]


def balanced(units: list[str]) -> bool:
    """Parentheses and brackets balanced, never `)` before its `(`, every ring label closed."""
    depth, bracket, rings = 0, 0, set()
    for u in units:
        if bracket:
            bracket = 0 if u == "]" else 1
            continue
        if u == "[":
            bracket = 1
        elif u == "]":
            return False
        elif u == "(":
            depth += 1
        elif u == ")":
            depth -= 1
            if depth < 0:
                return False
        elif u.isdigit() or u.startswith("%"):
            rings ^= {u}
    return depth == 0 and not bracket and not rings


def test_constrained_smiles_are_balanced(lm, cons):
    eng = lm.engine
    prompts = eng.encode(["<mol>"] * 4 + ["<reactants>C("], raw=True)
    closed = 0
    for max_new in (10, 24, 60):
        out = eng.sample(prompts, n=6, temperature=1.3, max_new_tokens=max_new, constrained=True, seed=max_new)
        for p, hyps in zip(prompts, out):
            for h in hyps:
                assert h.ids[-1] in cons.close_ids, "constrained SMILES must be closed within max_new_tokens"
                assert balanced(_smiles_units(cons, cons.open_tail(p)[1:] + h.ids))
                closed += 1
    assert closed == 3 * 5 * 6
    unconstrained = eng.sample(prompts, n=6, temperature=1.3, max_new_tokens=24, constrained=False, seed=0)
    assert not all(balanced(_smiles_units(cons, h.ids)) and h.ids[-1] in cons.close_ids
                   for hyps in unconstrained for h in hyps)


def test_grammar_random_walk_always_balanced(cons):
    """Uniform choices among allowed tokens: every closed SMILES is balanced (no model involved)."""
    rng = random.Random(0)
    mol = cons.open_of["mol"]
    for i in range(150):
        budget = rng.choice([6, 15, 40])
        state, ids = cons.start([mol]), []
        for step in range(budget):
            choices = cons.allowed(state, budget - step).nonzero().flatten().tolist()
            t = rng.choice(choices)
            ids.append(t)
            state = cons.advance(state, t)
            if state.done:
                break
        assert ids[-1] == cons.close_of["mol"], (i, ids)
        assert balanced(_smiles_units(cons, ids))


def _accepts(cons, tok, tag: str, smiles: str) -> bool:
    return _accepts_ids(cons, tok.encode(f"<{tag}>{smiles}</{tag}>"))


def _accepts_ids(cons, ids: list[int]) -> bool:
    state = cons.start([])
    for step, t in enumerate(ids):
        if not bool(cons.allowed(state, 10_000)[t]):
            return False
        state = cons.advance(state, t)
    return state.done


def test_grammar_accepts_real_smiles_and_rejects_broken(lm, cons, uspto_dir):
    tok = lm.tokenizer
    with gzip.open(uspto_dir / "USPTO_50k_MHN_prepro.csv.gz", "rt") as f:
        rows = [r for _, r in zip(range(400), csv.DictReader(f))]
    rejected = [r["prod_smiles"] for r in rows if not _accepts(cons, tok, "product", r["prod_smiles"])]
    rejected += [r["reactants_can"] for r in rows if not _accepts(cons, tok, "reactants", r["reactants_can"])]
    assert rejected == []
    for broken in ("C(C", "CC)C", "C1CC", "c1ccc(cc1", "(C)C", "C=", "CC..C", "C1CC.C1"):
        assert not _accepts(cons, tok, "mol", broken), broken


def test_material_and_sequence_grammar(cons, lm):
    tok = lm.tokenizer

    def ids(tag, *tokens):
        return [tok.tag_token_id(f"<{tag}>"), *(tok.token_to_id(t) for t in tokens), tok.tag_token_id(f"</{tag}>")]

    assert _accepts_ids(cons, ids("material", "<i>Na", "<i>Cl", "<sg225>"))
    assert _accepts_ids(cons, ids("material", "<i>Na", "<i>Cl"))
    assert not _accepts_ids(cons, ids("material", "<sg225>"))  # no elements
    assert not _accepts_ids(cons, ids("material", "<i>Na", "<sg225>", "<i>Cl"))  # space group last
    assert not _accepts_ids(cons, ids("material", "<m>C"))  # another domain's token
    assert _accepts_ids(cons, ids("protein", "<a>M", "<a>K"))
    assert not _accepts_ids(cons, ids("protein"))  # empty
    assert not _accepts_ids(cons, ids("rna", "<r>A", "<d>A"))


# ---------------------------------------------------------------------------------------------- retries
def _eos_bias(lm, bias: float):
    eos = lm.tokenizer.eos_token_id

    def hook(module, inputs, output):
        output[..., eos] += bias
        return output

    return lm.model.get_output_embeddings().register_forward_hook(hook)


def test_empty_outputs_are_retried(lm):
    handle = _eos_bias(lm, 9.0)
    try:
        gens = lm.generate(["Hi", "Tell me"], n=6, temperature=0.7, max_new_tokens=8, max_retries=3)
        flat = [g for row in gens for g in row]
        assert any(g.retries > 0 and g.entity for g in flat)  # a hotter retry produced something
        assert all(g.entity or g.retries == 3 for g in flat)  # nothing left empty without using every retry
        none = lm.generate(["Hi"], n=2, temperature=0.7, max_new_tokens=8, max_retries=0)
        assert all(g.retries == 0 for g in none[0])
    finally:
        handle.remove()
    handle = _eos_bias(lm, 1e4)
    try:
        always = lm.generate("Hi", n=2, max_new_tokens=8, max_retries=2)
        assert [(g.entity, g.retries) for g in always] == [("", 2), ("", 2)]
    finally:
        handle.remove()


# ---------------------------------------------------------------------------------------------- post-processing
def test_extract_strips_prefixes_and_whitespace():
    assert extract("Reactants: <reactants>CC(=O)O . OCC</reactants>") == ("reactants", "CC(=O)O.OCC")
    assert extract("<mol><m>C<m>O</mol>") == ("mol", "CO")
    assert extract("<material>Na  Cl <sg225></material>") == ("material", "Na Cl <sg225>")
    assert extract("  ethanol \n") == (None, "ethanol")
    assert extract("<mol>CC<product>O</product>") == ("mol", "CC")  # malformed tags: first span, leniently


@pytest.mark.parametrize("tag, entity, canonical, verified_by", [
    ("mol", "OCC", "CCO", "rdkit"),
    ("reactants", "OCC.CC(=O)O", "CC(=O)O.CCO", "rdkit"),
    ("protein", "mkv", "MKV", "alphabet"),
    ("rna", "ACGU", "ACGU", "alphabet"),
    ("material", "Cl Na <sg225>", "Na Cl <sg225>", "smact"),
    (None, "ethanol", "ethanol", None),
])
def test_check_valid(tag, entity, canonical, verified_by):
    assert check(tag, entity) == (canonical, True, verified_by)


@pytest.mark.parametrize("tag, entity", [("mol", "C1CC"), ("mol", ""), ("reactants", "CC.C(("), ("protein", "MK1"),
                                         ("material", "Na Na Na Cl <sgNone>"), ("material", "Xx <sg1>"), (None, " ")])
def test_check_invalid(tag, entity):
    canonical, valid, _ = check(tag, entity)
    assert canonical is None and valid is False


def test_dedup_merges_canonical_forms_and_keeps_the_best():
    gens = [to_generation("<mol>OCC</mol>", -3.0), to_generation("<mol>CCO</mol>", -1.0),
            to_generation("<mol>C1C</mol>", -2.0), to_generation("<mol>C1C</mol>", -5.0)]
    out = dedup(gens)
    assert [(g.entity, g.score) for g in out] == [("CCO", -1.0), ("C1C", -2.0)]
    assert dedup(gens, k=1)[0].canonical == "CCO"
    assert json.loads(json.dumps(Generation("", "", None, None, False, float("-inf"), None).to_dict()))["score"] is None


# ---------------------------------------------------------------------------------------------- CLI and vLLM
def test_cli_generate_json(tiny_checkpoint):
    from typer.testing import CliRunner

    from naturelm.generate.cli import app

    res = CliRunner().invoke(app, ["--model", str(tiny_checkpoint), "<mol>", "--raw", "--n", "2",
                                   "--max-new-tokens", "12", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 2 and {"raw", "entity", "canonical", "valid", "score", "verified_by", "retries"} <= set(rows[0])
    assert all(r["raw"].startswith("<mol>") for r in rows)


def test_vllm_import_guard(tiny_checkpoint):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from naturelm.errors import DataSourceMissing
        from naturelm.generate.vllm_backend import VLLMBackend

        with pytest.raises(DataSourceMissing, match="pip install vllm"):
            VLLMBackend(tiny_checkpoint)
    else:
        pytest.skip("vllm is installed; the guard is not reachable")
