"""Fuzzing: every NatureLM method and every server route under generated hostile input.

The Python API may only raise naturelm.errors types (NatureLMError); the server may only answer 2xx/4xx, each
within a time budget. Bounded by default (a few hundred examples in all); `pytest -m slow tests/test_fuzz.py`
runs the large budgets (>= 1,000 calls per method, >= 10,000 requests over every route); FUZZ_REQUESTS and
FUZZ_CALLS override them.
"""
from __future__ import annotations

import inspect
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from naturelm.errors import NatureLMError

pytestmark = pytest.mark.usefixtures("one_thread")
SLOW_CALLS = int(os.environ.get("FUZZ_CALLS", 1000))
SLOW_REQUESTS = int(os.environ.get("FUZZ_REQUESTS", 10_000))
SERVER_TIMEOUT_S = 30.0  # the fuzzed server's --timeout: work past it is cancelled and answered 408
REQUEST_BUDGET_S = 45.0  # a request slower than this (timeout + margin) counts as a hang

# ---------------------------------------------------------------------------------------------- values
_text = st.text(st.characters(codec="utf-8"), max_size=12)
_hostile_text = st.sampled_from(["", " ", "\ud800", "x\udfff", "</mol>", "<mol>", "<mol>CC</mol>", "C" * 5000,
                                 "C" * 20000, "c1ccccc1", "CCO", "<protein>MK</protein>", "\x00", "é" * 50, "1e400"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), _text, _hostile_text)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(_text, SCALARS, max_size=3))


# ---------------------------------------------------------------------------------------------- the Python API
VALID = {  # a plausible value per parameter name, mixed with hostile ones
    "prompts": "<mol>", "prompt": "<mol>", "product": "CCO", "reactants": "CC(=O)Cl.OCC", "smiles": "CCO",
    "name": "ethanol", "question": "Is <mol>CCO</mol> soluble?", "description": "soluble", "goal": "increase QED",
    "dna": "ATGAAATAA", "protein": "MKV", "elements": ["Li", "O"], "n": 1, "k": 1, "num_beams": 1, "seed": 0,
    "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 3, "value": 1.0, "delta": 0.1, "target": "DRD3",
    "rbp": "HNRNPA1", "ids": [1, 2, 3],
}
FIXED = {"method": "model", "retrosim": None, "memory": None, "by": "gene", "property": None, "max_retries": 0}
METHODS = ["generate", "retrosynthesis", "forward", "smiles_to_iupac", "iupac_to_smiles", "generate_molecules",
           "optimize_molecule", "classify", "design_protein", "design_rna", "design_material", "guide_rna",
           "translate_dna", "back_translate"]


def _arguments(method) -> st.SearchStrategy[dict]:
    params = [p for p in inspect.signature(method).parameters.values()
              if p.name not in ("self", "gen", "properties", "kw") and p.name not in FIXED]
    fields = {p.name: st.one_of(st.just(VALID.get(p.name, "CCO")), VALUES) for p in params}
    opts = st.fixed_dictionaries({}, optional={
        "max_new_tokens": st.one_of(st.just(3), VALUES), "temperature": st.one_of(st.just(0.5), VALUES),
        "seed": st.one_of(st.just(1), VALUES), "QED": VALUES})
    usable = {p.name for p in params} | set(FIXED)
    fixed = {k: v for k, v in FIXED.items() if k in inspect.signature(method).parameters}
    return st.tuples(st.fixed_dictionaries(fields), opts).map(
        lambda t: {**fixed, **t[0], **{k: v for k, v in t[1].items()
                                      if k not in usable and (k != "QED" or method.__name__ == "generate_molecules")}})


def _cheap(kwargs: dict) -> dict:
    """Keep the fuzz fast: at most 3 new tokens and 2 candidates when those are valid numbers."""
    for key, cap in (("max_new_tokens", 3), ("n", 2), ("k", 2), ("num_beams", 2)):
        v = kwargs.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > cap:
            kwargs[key] = cap
    return kwargs


def _call_raises_only_typed_errors(lm, name: str, kwargs: dict) -> None:
    method = getattr(lm, name)
    params = inspect.signature(method).parameters
    kwargs = _cheap(dict(kwargs))
    if "max_new_tokens" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs.setdefault("max_new_tokens", 3)
    try:
        method(**kwargs)
    except NatureLMError:
        pass


def _api_fuzz(lm, examples: int):
    for name in METHODS:
        method = getattr(type(lm), name)

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(_arguments(method))
        def run(kwargs):
            _call_raises_only_typed_errors(lm, name, kwargs)

        run()


def test_api_methods_raise_only_naturelm_errors(lm):
    _api_fuzz(lm, 20)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_api_methods_raise_only_naturelm_errors_large(lm):
    _api_fuzz(lm, SLOW_CALLS)


# The other public methods, and retrosynthesis / forward through their tools ("ranked", "auto"). The tools are
# small (fitted on two atom-mapped reactions; retrieval memories of four), so a call costs what the model does.
AMIDE = ("[CH3:1][CH2:8][C:2](=[O:3])[OH:4].[NH2:5][CH2:6][CH3:7]", "[CH3:1][CH2:8][C:2](=[O:3])[NH:5][CH2:6][CH3:7]")
ESTER = ("[CH3:1][C:2](=[O:3])[O:4][CH3:5].[OH2:6]", "[CH3:1][C:2](=[O:3])[OH:4]")
TOOL_VALID = {"product": "CCNC(=O)CC", "reactants": "CCC(=O)O.CCN", "protein": "MKVLAAGIVALLLAAGCSS",
              "target": "DRD3", "rbp": "HNRNPA1", "by": "gene", "prompt": "Product: <mol>CCO</mol>",
              "candidates": ["CC=O", "CCO", "<mol>C</mol>"], "tag": "mol", "raw": False, "task": "retrosynthesis",
              "inputs": ["CCO"], "direction": "retro", "n_neighbours": 2, "question": "Is <mol>CCO</mol> toxic?",
              "path": "/nonexistent/naturelm-checkpoint", "device": "cpu", "quantize": None, "dtype": None}
TOOL_METHODS = ["retrosynthesis:ranked", "retrosynthesis:auto", "forward:ranked", "forward:auto",
                "retrosynthesis_rag", "forward_rag", "reaction_memory", "design_ligand", "rna_for_protein", "rank",
                "predict", "supports", "classify_checked", "load"]


@pytest.fixture(scope="module")
def tool_lm(lm):
    """`lm` with a RetroSim, a ForwardTemplates and retrieval memories fitted on a few reactions (set as its own,
    so method="auto" and memory=None use them too)."""
    from naturelm.data.retrieval import ReactionMemory
    from naturelm.data.sources.uspto50k import Reaction, _extract_template
    from naturelm.language.codecs import strip_atom_maps, try_canonical
    from naturelm.tasks.baselines.forward_templates import ForwardTemplates
    from naturelm.tasks.baselines.retrosim import RetroSim

    records = [Reaction(f"r{i}", None, try_canonical(strip_atom_maps(p)),
                        try_canonical(strip_atom_maps(r), reactant_set=True), "train", _extract_template(r, p, str(i)))
               for i, (r, p) in enumerate((AMIDE, ESTER))]
    products = [r.product for r in records] + ["CC(=O)Nc1ccc(O)cc1", "CCO"]
    reactants = [r.reactants for r in records] + ["CC(=O)Cl.Nc1ccc(O)cc1", "CC=O"]
    lm._memories = {"retro": ReactionMemory(products, reactants),
                    "forward": ReactionMemory(products, reactants, direction="forward")}
    lm._forward_templates = ForwardTemplates(n_neighbours=5).fit(records)
    lm.retrosim_for_fuzz = RetroSim(n_neighbours=5, processes=1, progress=False).fit(records)
    return lm


def _tool_arguments(lm, case: str) -> st.SearchStrategy[dict]:
    name, _, method = case.partition(":")
    sig = inspect.signature(getattr(type(lm), name))
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls", "gen", "kw", "properties")
              and p.kind is not p.VAR_KEYWORD]
    fixed = {"method": method} if method else {}
    if name == "retrosynthesis":
        fixed["retrosim"] = lm.retrosim_for_fuzz
    if name == "forward":
        fixed["templates"] = lm._forward_templates
    fields = {p.name: st.one_of(st.just(TOOL_VALID.get(p.name, VALID.get(p.name, "CCO"))), VALUES)
              for p in params if p.name not in fixed and p.name not in ("retrosim", "templates", "memory")}
    opts = st.fixed_dictionaries({}, optional={"max_new_tokens": st.one_of(st.just(3), VALUES),
                                               "temperature": st.one_of(st.just(0.5), VALUES),
                                               "rank_weight": VALUES, "retrosim_index": VALUES})
    takes = {p.name for p in sig.parameters.values()} | (
        {"max_new_tokens", "temperature"} if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()) else set())
    return st.tuples(st.fixed_dictionaries(fields), opts).map(
        lambda t: {**t[0], **{k: v for k, v in t[1].items() if k in takes}, **fixed})


def _tool_fuzz(lm, examples: int, cases: list[str] = TOOL_METHODS) -> dict:
    calls = {}
    for case in cases:
        name = case.partition(":")[0]
        calls[case] = 0

        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(_tool_arguments(lm, case))
        def run(kwargs):
            calls[case] += 1
            kwargs = _cheap(dict(kwargs))
            if name == "rank" and isinstance(kwargs.get("candidates"), list):
                kwargs["candidates"] = kwargs["candidates"][:3]
            method = type(lm).load if name == "load" else getattr(lm, name)
            try:
                method(**kwargs)
            except NatureLMError:
                pass

        started = time.perf_counter()
        run()
        if os.environ.get("FUZZ_LOG"):
            print(f"{case}: {calls[case]} calls, {time.perf_counter() - started:.1f} s", flush=True)
    return calls


def test_tool_methods_raise_only_naturelm_errors(tool_lm):
    calls = _tool_fuzz(tool_lm, 8)  # ~100 calls in all
    assert set(calls) == set(TOOL_METHODS) and min(calls.values()) >= 5


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_tool_methods_raise_only_naturelm_errors_large(tool_lm):
    only = os.environ.get("FUZZ_ONLY")  # a comma-separated subset of TOOL_METHODS
    calls = _tool_fuzz(tool_lm, SLOW_CALLS, only.split(",") if only else TOOL_METHODS)
    print("TOOL FUZZ", json.dumps(calls))
    assert min(calls.values()) >= SLOW_CALLS * 0.9


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.lists(st.one_of(st.integers(-2**70, 2**70), st.floats(), st.text(max_size=3), st.none()),
                          max_size=6), st.lists(st.integers(0, 50), max_size=6)))
def test_decode_raises_only_input_errors(tiny_tokenizer, ids):
    try:
        tiny_tokenizer.decode(ids)
    except NatureLMError:
        pass


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from naturelm.language import NatureTokenizer

    return NatureTokenizer()


# ---------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def fuzz_client(tiny_checkpoint):
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app
    from naturelm.serve.backends import load_model

    cfg = ServeConfig(model_name="tiny", max_new_tokens=6, default_new_tokens=4, task_new_tokens=4, max_n=6,
                      max_entity_chars=600, max_body_bytes=50_000, timeout_s=SERVER_TIMEOUT_S)
    with TestClient(create_app(load_model(tiny_checkpoint, "engine"), cfg), raise_server_exceptions=False) as c:
        yield c


def _routes(spec: dict) -> list[tuple[str, str, dict]]:
    """(method, path, operation) of every route in the OpenAPI schema."""
    return [(m, path, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def _body_strategy(spec: dict, op: dict) -> st.SearchStrategy:
    """JSON bodies: each documented field either its example/default or a hostile value, extra keys sometimes,
    sometimes garbage in place of the whole body."""
    ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if ref is None:
        return st.just(None)
    schema = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref
    fields, goods = {}, {}
    for name, prop in schema.get("properties", {}).items():
        good = prop.get("examples", [prop.get("default")])[0] if ("examples" in prop or "default" in prop) else None
        if name == "messages":
            good = [{"role": "user", "content": "Is <mol>CCO</mol> soluble?"}]
        elif name == "prompt":
            good = "<mol>"
        if good is not None:
            goods[name] = good
        fields[name] = st.one_of(st.just(good), VALUES,
                                 st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "x"]),
                                                                 "content": VALUES}), max_size=2))
    body = st.fixed_dictionaries({}, optional=fields)
    # documented values with at most one field hostile (requests that get through to the model), anything
    # goes in every field, extra keys, or garbage in place of the body
    one_off = st.sampled_from(sorted(fields) or [""]).flatmap(
        lambda name: (fields[name] if name else st.just(None)).map(
            lambda v: {**goods, **({name: v} if name else {})}))
    return st.one_of(st.just(goods), one_off, body,
                     body.flatmap(lambda b: st.dictionaries(_text, SCALARS, max_size=2).map(lambda e: {**e, **b})),
                     VALUES)


def _query_strategy(op: dict) -> st.SearchStrategy:
    params = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
    url_safe = _hostile_text.filter(lambda s: "\x00" not in s and "\ud800" not in s and "\udfff" not in s)
    return st.fixed_dictionaries({}, optional={p: st.one_of(_text, url_safe) for p in params})  # URLs hold UTF-8


def _encode(body) -> bytes:
    text = json.dumps(body)  # NaN / Infinity tokens for non-finite floats; \\ud800 escapes for lone surrogates
    return text.replace('"1e400"', "1e400").encode()


def _fuzz_server(client, total: int) -> dict:
    spec = client.get("/openapi.json").json()
    routes = [r for r in _routes(spec) if r[0] in ("get", "post")]
    counts = {"requests": 0, "5xx": 0, "hangs": 0, "max_s": 0.0, "by_status": {}}
    log = os.environ.get("FUZZ_LOG")  # a JSON file the counts are written to as the run goes
    for _, path, op in routes:  # first calls load oracles and caches: not part of the timed fuzz
        if path.startswith("/v1/tasks/") and "requestBody" in op:
            client.post(path, json={})
    with_input = [r for r in routes if "requestBody" in r[2] or r[2].get("parameters")]
    per_route = -(-total // len(with_input))  # routes without input (GET /health) are asked once
    for method, path, op in routes:
        strategy = _body_strategy(spec, op) if method == "post" else _query_strategy(op)

        @settings(max_examples=per_route, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(payload):
            start = time.perf_counter()
            if method == "post":
                r = client.post(path, content=_encode(payload), headers={"content-type": "application/json"})
            else:
                r = client.get(path, params=payload)
            elapsed = time.perf_counter() - start
            counts["requests"] += 1
            counts["by_status"][r.status_code] = counts["by_status"].get(r.status_code, 0) + 1
            counts["hangs"] += elapsed > REQUEST_BUDGET_S
            counts["max_s"] = round(max(counts["max_s"], elapsed), 2)
            if log and counts["requests"] % 100 == 0:
                with open(log, "w") as f:
                    json.dump(counts, f)
            if r.status_code >= 500:
                counts["5xx"] += 1
                raise AssertionError(f"{method.upper()} {path} {_encode(payload)[:300]!r} -> {r.status_code} {r.text}")
            assert elapsed <= REQUEST_BUDGET_S, f"{path} took {elapsed:.1f} s"
            assert r.status_code < 300 or "error" in r.json(), r.text

        run()
    if log:
        with open(log, "w") as f:
            json.dump(counts, f)
    return counts


def test_server_fuzz_over_every_route(fuzz_client):
    counts = _fuzz_server(fuzz_client, 300)
    assert counts["5xx"] == 0 and counts["hangs"] == 0 and counts["requests"] >= 250


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_server_fuzz_large(fuzz_client, tmp_path):
    started = time.perf_counter()
    counts = _fuzz_server(fuzz_client, SLOW_REQUESTS)
    counts["elapsed_s"] = round(time.perf_counter() - started, 1)
    print("FUZZ", json.dumps(counts))
    assert counts["5xx"] == 0 and counts["hangs"] == 0 and counts["requests"] >= SLOW_REQUESTS * 0.9
