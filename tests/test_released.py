"""Released NatureLM checkpoints as downloaded: folders built from the REAL Llama 3 / Mixtral base vocabularies
(tests/released_fixtures.py), the golden ids of ../shared/data/naturelm-release/expected_ids.json, loading, decoding,
constrained generation, serving and evaluation on tiny random weights of the real vocabulary sizes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from naturelm.errors import ConfigError
from released_fixtures import VARIANTS, VARIANTS_1B, released_folders

RELEASE_FACTS = Path("shared") / "data" / "naturelm-release" / "expected_ids.json"  # beside the repository
GOLDEN_FILE = next((p / RELEASE_FACTS for p in Path(__file__).resolve().parents if (p / RELEASE_FACTS).is_file()),
                   Path(__file__).resolve().parents[2] / RELEASE_FACTS)
MODEL_OF = {v: "NatureLM-1B" if v in VARIANTS_1B else "NatureLM-8x7B" for v in VARIANTS}
ONE_PER_FAMILY = ("1b", "8x7b-model")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def released() -> dict[str, Path]:
    folders = released_folders()
    if folders is None:
        pytest.skip("llama-models / mistral-common not installed (make setup installs them from requirements-data.txt)")
    return folders


@pytest.fixture(scope="session")
def golden() -> dict:
    if not GOLDEN_FILE.is_file():
        pytest.skip(f"{GOLDEN_FILE} not found")
    return json.loads(GOLDEN_FILE.read_text())["models"]


_MODELS: dict = {}


def released_lm(released, variant):
    from naturelm.api import NatureLM

    if variant not in _MODELS:
        _MODELS[variant] = NatureLM.load(released[variant])
    return _MODELS[variant]


def released_tok(released, variant):
    """The tokenizer `NatureLM.load` rebuilt (`NatureTokenizer.from_released`), one load per variant and session."""
    return released_lm(released, variant).tokenizer


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_golden_string_gives_the_released_ids(released, golden, variant):
    tok = released_tok(released, variant)
    gold = golden[MODEL_OF[variant]]
    assert len(tok) == gold["vocab_size"]
    for role, (token, tid) in gold["specials"].items():
        assert tok.token_to_id(token) == tid and getattr(tok, f"{role}_token_id") == tid, role
    for name, case in gold["encode"].items():
        assert tok.encode(case["text"], add_bos=True) == case["ids"], name


@pytest.mark.parametrize("variant", ONE_PER_FAMILY)
def test_prompt_format_and_rules_are_the_released_ones(released, golden, variant):
    tok = released_tok(released, variant)
    case = golden[MODEL_OF[variant]]["encode"]["prompt_aspirin"]
    assert tok.format_prompt("What is the SMILES of aspirin?") == case["text"]
    assert tok.format_prompt(" What is the SMILES of aspirin? ").endswith("Response:")  # nothing after the colon
    assert tok.rules.released and ("reagent" in tok.rules.tags) == (variant != "1b")
    assert ("num" in tok.rules.tags) is False


def test_per_model_tag_sets_and_text_rules(released):
    one, moe = released_tok(released, "1b"), released_tok(released, "8x7b-model")
    reagent = "<reagent>CCO</reagent>"
    # 1B: <reagent> is an added token of the BPE, its content plain BPE text; 8x7B: a SMILES entity
    assert one.encode(reagent) == [one.token_to_id("<reagent>"), *one._text.encode("CCO").ids, one.token_to_id("</reagent>")]
    assert moe.encode(reagent) == [moe.token_to_id(t) for t in ("<reagent>", "<m>C", "<m>C", "<m>O", "</reagent>")]
    # <num> is one token on the 1B (spaces around it kept), spelled out by sentencepiece on the 8x7B
    assert one.token_to_id("<num>") in one.encode("x <num>5</num> y")
    assert moe.tokenize("<num>")[:3] == ["▁<", "num", ">"]
    # text spans: 1B strips all whitespace around entity tags, the 8x7B only spaces (each span starts with ▁)
    assert one.encode("a \n<mol>C</mol>\n b") == one.encode("a<mol>C</mol>b")
    assert moe.encode("a <mol>C</mol> b") == moe.encode("a<mol>C</mol>b")
    assert moe.encode("a\n<mol>C</mol>") != moe.encode("a<mol>C</mol>")
    # special-token strings in text are spelled out (the released code sets split_special_tokens)
    assert one.bos_token_id not in one.encode("<|begin_of_text|>") and moe.bos_token_id not in moe.encode("<s>")
    # the 8x7B's DNA 6-mers: greedy in <dna6mer>, one base per token in <dna>
    assert moe.tokenize("<dna6mer>ACGTACGTA</dna6mer>") == ["<dna6mer>", "<d>ACGTAC", "<d>G", "<d>T", "<d>A", "</dna6mer>"]
    assert moe.tokenize("<dna>ACGTACG</dna>")[1:-1] == [f"<d>{c}" for c in "ACGTACG"]
    # materials: items as written, no <sgNone> added; unknown units are <unk>
    assert one.tokenize("<material>Li O</material>") == ["<material>", "<i>Li", "<i>O", "</material>"]
    assert one.encode("<mol>[Xe+7]</mol>")[1] == one.unk_token_id


@pytest.mark.parametrize("variant", ONE_PER_FAMILY)
def test_decode_round_trips_and_handles_spaced_output(released, golden, variant):
    from naturelm.generate.postprocess import to_generation

    tok = released_tok(released, variant)
    gold = golden[MODEL_OF[variant]]
    for name, case in gold["encode"].items():
        ids = case["ids"][1:]
        text = tok.decode(ids)
        assert tok.encode(text) == ids, (name, text)  # no token lost
    dec = gold["decode"]["mol_spaced"]
    assert tok.decode(dec["ids"]) == "<mol>CC(=O)Oc1ccccc1C(=O)O</mol>"
    assert tok.decode(dec["ids"], skip_special_tokens=False).endswith("</mol>" + tok.id_to_token(tok.eos_token_id))
    for released_text in (dec["decoded"], dec["after_removing_m_prefix"]):  # the released decode, as text
        g = to_generation(released_text, 0.0, expect="mol")
        assert g.canonical == "CC(=O)Oc1ccccc1C(=O)O" and g.valid
    spaced = "<material> <i>Li <i>Li <i>O <sg225> </material> </s>"
    assert to_generation(spaced, 0.0).canonical == "Li Li O <sg225>"
    assert tok.decode(tok.encode("<protein>MKV</protein><dna>ACGT</dna>")) == "<protein>MKV</protein><dna>ACGT</dna>"


def test_science_tokens_py_is_parsed_never_executed(released, tmp_path):
    from naturelm.language.released import lists_from_source, packaged_lists, token_lists

    tags, science, source = token_lists(released["1b"])
    assert source.endswith("science_tokens.py") and (tuple(tags), tuple(science)) == packaged_lists()
    assert "SystemExit" in (released["1b"] / "science_tokens.py").read_text()  # a trap if it were executed
    # lists changed after the literal (as in older copies of the code): not trusted, the packaged copy is used
    assert lists_from_source("SCIENCE_TAG_TOKENS = ['<mol>']\nSCIENCE_TOKENS = []\nSCIENCE_TAG_TOKENS.append('x')") is None
    assert lists_from_source("SCIENCE_TAG_TOKENS = [f()]\nSCIENCE_TOKENS = []") is None
    assert lists_from_source("SCIENCE_TAG_TOKENS = ['<mol>']\nSCIENCE_TOKENS = ['<m>C']") == (["<mol>"], ["<m>C"])
    assert token_lists(tmp_path)[2] == "naturelm/language/assets"
    tags, science = packaged_lists()
    assert len(tags) == 126 and len(science) == 1746 and sum(t.startswith("<m>") for t in science) == 1401


def test_folders_that_do_not_match_are_refused(released, tmp_path):
    from naturelm.language import NatureTokenizer

    with pytest.raises(ConfigError, match="no Llama 3 or Mixtral"):
        NatureTokenizer.from_released(tmp_path)
    bad = tmp_path / "wrong-size"
    bad.mkdir()
    src = released["8x7b-model"]
    for f in ("tokenizer.model", "science_tokens.py"):
        (bad / f).write_bytes((src / f).read_bytes())
    (bad / "config.json").write_text(json.dumps({"vocab_size": 32000}))
    with pytest.raises(ConfigError, match="vocab_size=32000"):
        NatureTokenizer.from_released(bad)


def test_sentencepiece_conversion_equals_sentencepiece(released):
    spm = pytest.importorskip("sentencepiece")
    import pydoc_data.topics as topics

    from naturelm.language.base_vocab import sentencepiece_tokenizer

    model = released["8x7b-model"] / "tokenizer.model"
    ours, ref = sentencepiece_tokenizer(model), spm.SentencePieceProcessor(model_file=str(model))
    ours.encode_special_tokens = True
    lines = [ln for text in list(topics.topics.values())[:40] for ln in text.splitlines()]
    lines += ["  two  spaces\t tab", "héllo wörld 你好 🙂 1234567", "<num> <s> </s> <unk>", "\n\n\nResponse:"]
    for line in lines:
        assert (ours.encode(line, add_special_tokens=False).ids if line else []) == ref.encode(line), line


@pytest.mark.parametrize("variant", VARIANTS)
def test_load_generate_and_retrosynthesis(released, variant):
    lm = released_lm(released, variant)
    tok = lm.tokenizer
    assert lm.model.get_output_embeddings().weight.shape[0] == len(tok)
    gens = lm.retrosynthesis("CC(=O)Nc1ccc(O)cc1", k=3, method="model", max_new_tokens=12)
    assert len(gens) == 3 and len({g.key for g in gens}) == 3
    assert all(g.tag == "reactants" and math.isfinite(g.score) for g in gens)
    prompt = lm.engine.encode(["Please suggest possible reactants for the given product <product>CC</product>"])[0]
    assert tok.decode(prompt).endswith("Response:") and prompt[0] == tok.bos_token_id


@pytest.mark.parametrize("variant", ONE_PER_FAMILY)
@pytest.mark.parametrize("tag", ["mol", "protein", "material"])
def test_constrained_decoding_stays_inside_the_tag(released, variant, tag):
    lm = released_lm(released, variant)
    tok, engine = lm.tokenizer, lm.engine
    domain = tok.tags[tag].domain
    allowed = set(tok.domain_token_ids(domain)) | {tok.tag_token_id(f"</{tag}>")}
    prompt = engine.encode([f"<{tag}>"], raw=True)
    for hyp in engine.sample(prompt, n=3, temperature=1.0, max_new_tokens=10, seed=1)[0]:
        assert hyp.ids and set(hyp.ids) <= allowed
    for hyp in engine.beam(prompt, width=3, max_new_tokens=6)[0]:
        assert set(hyp.ids) <= allowed


@pytest.mark.parametrize("variant", ONE_PER_FAMILY)
def test_server_answers(released, variant):
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app

    lm = released_lm(released, variant)
    with TestClient(create_app(lm, ServeConfig(default_new_tokens=6))) as c:
        r = c.post("/v1/tasks/retrosynthesis", json={"product": "CC(=O)Nc1ccc(O)cc1", "k": 2, "method": "model",
                                                     "max_new_tokens": 8})
        assert r.status_code == 200, r.text
        assert r.json()["results"] and all(g["tag"] == "reactants" for g in r.json()["results"])
        r = c.post("/v1/chat/completions", json={"model": "naturelm", "max_tokens": 6,
                                                 "messages": [{"role": "user", "content": "Generate a molecule."}]})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("variant", VARIANTS)  # every released layout, as the issue asks
def test_cli_serve_and_eval_accept_the_folder(released, variant, tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from naturelm.eval.cli import app as eval_app
    from naturelm.serve import cli as serve_cli

    from naturelm.api import NatureLM

    served, real = {}, NatureLM.generate
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.setattr(NatureLM, "generate", lambda self, prompts, **kw: real(self, prompts, **{
        **kw, "max_new_tokens": 8}))  # a random model never closes its tag: keep the beams short
    root = typer.Typer()
    root.command("serve")(serve_cli.serve)
    root.add_typer(eval_app, name="eval")
    r = CliRunner().invoke(root, ["serve", "--model", str(released[variant])])
    assert r.exit_code == 0, r.output
    assert served["app"].state.model.tokenizer.rules.released
    data = tmp_path / "data"
    (data / "instructions").mkdir(parents=True)
    rec = {"task": "retrosynthesis", "instruction": "Please suggest possible reactants for the given product "
           "<product>CC(=O)Nc1ccc(O)cc1</product>", "response": "<reactants>CC(=O)Cl.Nc1ccc(O)cc1</reactants>",
           "meta": {"product": "CC(=O)Nc1ccc(O)cc1", "reactants": "CC(=O)Cl.Nc1ccc(O)cc1", "rxn_class": 1}}
    (data / "instructions" / "test.jsonl").write_text(json.dumps(rec) + "\n")
    out = tmp_path / "eval"
    r = CliRunner().invoke(root, ["eval", "--model", str(released[variant]), "--tasks", "retrosynthesis", "--k", "2",
                                  "--data", str(data), "--out", str(out), "--limit", "1"])
    assert r.exit_code == 0, r.output
    row = json.loads((out / "results.json").read_text())["results"][released[variant].name]
    assert row["retrosynthesis"]["n"] == 1


def test_saved_released_tokenizer_keeps_its_rules(released, tmp_path):
    from naturelm.language import NatureTokenizer

    tok = released_tok(released, "8x7b-model")
    tok.save_pretrained(tmp_path)
    again = NatureTokenizer.from_pretrained(tmp_path)
    assert again.rules == tok.rules and len(again) == len(tok)
    text = "Instruction: Please suggest <product>CC(=O)O</product>\n\n\nResponse:"
    assert again.encode(text, add_bos=True) == tok.encode(text, add_bos=True)


# ------------------------------------------------------------------------------------- one science vocabulary
def test_default_tokenizer_covers_the_released_vocabulary():
    from naturelm.language import NatureTokenizer
    from naturelm.language.released import extra_tokens, packaged_lists

    tok = NatureTokenizer()
    tags, science = packaged_lists()
    missing = [t for t in (*tags, *science, *extra_tokens(dna_kmers=False)) if tok.token_to_id(t) is None]
    assert not missing
    for smiles in ("[Na+].[Cl-]", "C[nH+]1ccccc1", "[13CH3]C(=O)O"):  # bracket atoms are single tokens
        units = tok.tokenize(f"<mol>{smiles}</mol>")[1:-1]
        assert tok.unk_token_id not in tok.encode(f"<mol>{smiles}</mol>") and "".join(u[3:] for u in units) == smiles
        assert all(u[3:] in ("[Na+]", "[Cl-]", "[nH+]", "[13CH3]") or not u[3:].startswith("[") for u in units)
    assert tok.decode(tok.encode("<mol>[Na+].[Cl-]</mol>")) == "<mol>[Na+].[Cl-]</mol>"


def _bracket_atoms(text: str) -> set[str]:
    import re

    return set(re.findall(r"\[[^\]]+]", text))


def test_default_tokenizer_has_no_unk_on_uspto50k_and_moses(uspto_dir):
    """Every SMILES regex unit outside brackets is a fixed token (the codec's base units); so a SMILES encodes
    without <unk> exactly when each of its bracket atoms is a token: checked for all of USPTO-50k and MOSES."""
    import gzip
    import importlib.util

    import pandas as pd

    from naturelm.language import NatureTokenizer
    from naturelm.language.codecs.molecule import _BASE_UNITS, SMILES_REGEX

    tok = NatureTokenizer()
    assert all(tok.token_to_id("<m>" + u) is not None for u in _BASE_UNITS)
    df = pd.read_csv(uspto_dir / "USPTO_50k_MHN_prepro.csv.gz")
    smiles = [p for col in ("prod_smiles", "reactants_can") for s in df[col] for p in str(s).split(".")]
    atoms = _bracket_atoms(" ".join(smiles))
    spec = importlib.util.find_spec("moses")
    if spec is None:
        pytest.skip("molsets (MOSES) not installed")
    data = Path(list(spec.submodule_search_locations)[0]) / "dataset" / "data"
    for split in ("train", "test", "test_scaffolds"):
        with gzip.open(data / f"{split}.csv.gz", "rt") as fh:
            atoms |= _bracket_atoms(fh.read())
    assert atoms and not [a for a in atoms if tok.token_to_id("<m>" + a) is None]
    sample = smiles[::50]
    assert all(len("".join(SMILES_REGEX.findall(s))) == len(s) for s in sample)
    assert not [s for s in sample if tok.unk_token_id in tok.encode(f"<mol>{s}</mol>")]


def test_vllm_backend_feeds_the_released_prompt_ids(released, golden, monkeypatch):
    """The vLLM backend (GPU) through a stand-in `vllm` module: what it is given and how its ids are read back."""
    import sys
    import types

    calls = {}

    class FakeLLM:
        def __init__(self, model, skip_tokenizer_init, **kw):
            calls["init"] = dict(model=model, skip_tokenizer_init=skip_tokenizer_init)

        def generate(self, prompts, params):
            calls["prompts"], calls["params"] = prompts, params
            ids = golden["NatureLM-8x7B"]["decode"]["mol_spaced"]["ids"]
            out = types.SimpleNamespace(token_ids=ids, cumulative_logprob=-1.5)
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    fake = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from naturelm.generate.vllm_backend import VLLMBackend

    backend = VLLMBackend(released["8x7b-model"])
    assert calls["init"]["skip_tokenizer_init"] is True
    (g,) = backend.generate("What is the SMILES of aspirin?", n=1)
    case = golden["NatureLM-8x7B"]["encode"]["prompt_aspirin"]
    assert calls["prompts"] == [{"prompt_token_ids": case["ids"]}]
    tok = backend.tok
    assert set(calls["params"]["stop_token_ids"]) == {tok.eos_token_id} | {tok.tag_token_id(t.close) for t in tok.tags.values()}
    assert g.tag == "mol" and g.canonical == "CC(=O)Oc1ccccc1C(=O)O" and g.valid


def test_fine_tuning_pairs_use_the_checkpoint_prompt(released):
    from naturelm.train.data import IGNORE, encode_pair

    tok = released_tok(released, "1b")
    ids, labels = encode_pair(tok, "What is the SMILES of ethanol?", "<mol>CCO</mol>")
    prompt = tok.encode(tok.format_prompt("What is the SMILES of ethanol?"), add_bos=True)
    assert ids[: len(prompt)] == prompt and tok.decode(prompt).endswith("Response:")
    assert labels[len(prompt):] == tok.encode("<mol>CCO</mol>", add_eos=True) and set(labels[: len(prompt)]) == {IGNORE}
