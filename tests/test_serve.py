"""The server: dynamic batching, OpenAI client against a live loopback server, task endpoints, 4xx errors, drawings."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import time

import pytest

from conftest import REPO
from naturelm.language.codecs import canonical_reactant_set, try_canonical
from naturelm.serve.batching import Batcher, GenerationTimeout, QueueFull

pytest.importorskip("fastapi")


# ---------------------------------------------------------------------------------------------- batching
def test_batcher_shares_one_call_between_concurrent_requests():
    calls = []

    def handler(key, payloads):
        calls.append((key, list(payloads)))
        time.sleep(0.05)
        return [p * 10 if p != 3 else ValueError("three") for p in payloads]

    async def main():
        b = Batcher(handler, max_batch=8, max_wait_ms=20)
        await b.start()
        try:
            tasks = [asyncio.create_task(b.submit("k", i)) for i in range(6)]
            tasks += [asyncio.create_task(b.submit("other", 100))]
            out = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await b.stop()
        return out, b.stats

    out, stats = asyncio.run(main())
    assert out[:3] == [0, 10, 20] and out[4:6] == [40, 50] and out[6] == 1000
    assert isinstance(out[3], ValueError)  # a per-item failure reaches only its own request
    assert sorted(len(p) for _, p in calls) == [1, 6]  # 6 same-key requests in one call, the other key apart
    assert stats.items == 7 and stats.batches == 2


def test_batcher_timeout_and_queue_limit():
    def slow(key, payloads):
        time.sleep(0.5)
        return payloads

    async def main():
        b = Batcher(slow, max_wait_ms=1, timeout_s=0.1, max_queue=1)
        await b.start()
        try:
            with pytest.raises(GenerationTimeout):
                await b.submit("k", 1)
            first = asyncio.create_task(b.submit("k", 2))  # waits in the queue while the worker is busy
            await asyncio.sleep(0)
            with pytest.raises(QueueFull):
                await b.submit("k", 3)
            first.cancel()
        finally:
            await b.stop()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    from naturelm.serve.backends import load_model

    return load_model(tiny_checkpoint, "engine")


@pytest.fixture(scope="module")
def client(model):
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app

    cfg = ServeConfig(model_name="tiny", max_body_bytes=20_000, max_new_tokens=64, default_new_tokens=16,
                      task_new_tokens=24, max_entity_chars=500, max_n=8)
    with TestClient(create_app(model, cfg)) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(model):
    """A real uvicorn server on a random loopback port, in a thread."""
    import uvicorn

    from naturelm.serve.app import ServeConfig, create_app

    port = _free_port()
    cfg = ServeConfig(model_name="tiny", max_new_tokens=64, default_new_tokens=24, task_new_tokens=24, max_n=8)
    server = uvicorn.Server(uvicorn.Config(create_app(model, cfg), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_client_completions_and_chat(live_server):
    from openai import OpenAI

    client = OpenAI(base_url=live_server + "/v1", api_key="unused", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list().data] == ["tiny"]

    done = client.completions.create(model="tiny", prompt="<mol>", max_tokens=16, n=2, temperature=0.7)
    assert len(done.choices) == 2 and all(isinstance(c.text, str) for c in done.choices)
    assert all(c.finish_reason in ("stop", "length") for c in done.choices)
    assert done.usage.prompt_tokens == 1  # the one `<mol>` tag token
    extra = done.choices[0].model_extra["naturelm"]  # entity checks ride along as an extra field
    assert extra["tag"] in ("mol", None) and isinstance(extra["valid"], bool)
    assert not done.choices[0].text.startswith("<mol>")  # the continuation only, as OpenAI completions return
    assert done.usage.completion_tokens >= 1

    chat = client.chat.completions.create(model="tiny", max_tokens=16, temperature=0.7, seed=7, messages=[
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "Please suggest possible reactants for the given product <product>CCO</product>"}])
    assert chat.choices[0].message.role == "assistant" and isinstance(chat.choices[0].message.content, str)

    again = client.chat.completions.create(model="tiny", max_tokens=16, temperature=0.7, seed=7, messages=[
        {"role": "user", "content": "Please suggest possible reactants for the given product <product>CCO</product>"}])
    assert again.choices[0].message.content == chat.choices[0].message.content  # a seed makes samples reproducible

    pieces = list(client.completions.create(model="tiny", prompt="Instruction: hi\n\n\nResponse: ", max_tokens=8,
                                            stream=True))
    assert pieces and pieces[-1].choices[0].finish_reason in ("stop", "length")
    stream = client.chat.completions.create(model="tiny", max_tokens=8, stream=True,
                                            messages=[{"role": "user", "content": "Generate a molecule."}])
    text = "".join(ch.choices[0].delta.content or "" for ch in stream)
    assert isinstance(text, str)


def test_task_endpoint_returns_canonical_smiles_with_validity(client):
    r = client.post("/v1/tasks/retrosynthesis", json={"product": "[CH3:1][C:2](=O)Nc1ccc(O)cc1", "k": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["input"]["product"] == "CC(=O)Nc1ccc(O)cc1"  # atom maps stripped, canonical
    assert 1 <= len(out["results"]) <= 3
    for g in out["results"]:
        assert set(g) >= {"raw", "entity", "canonical", "valid", "score", "verified_by"}
        expected = try_canonical(g["entity"], reactant_set=True) if g["entity"] else None
        assert g["valid"] is (expected is not None)  # the flag agrees with RDKit
        assert g["canonical"] == expected
        if g["valid"]:
            assert g["canonical"] == canonical_reactant_set(g["canonical"]) and g["verified_by"] == "rdkit"


TASK_BODIES = {
    "forward": {"reactants": "CC(=O)Cl.Nc1ccc(O)cc1"},
    "smiles_to_iupac": {"smiles": "OC(=O)c1ccccc1OC(C)=O"},
    "iupac_to_smiles": {"name": "ethanol"},
    "generate_molecules": {"n": 2},
    "generate_molecules_qed": {"properties": {"QED": 0.8}, "n": 2},
    "optimize_molecule": {"smiles": "CCOc1ccccc1C(=O)O", "goal": "increase QED", "n": 2},
    "design_protein": {"description": "soluble"},
    "design_rna": {"n": 2},
    "design_material": {"elements": ["Li", "Fe", "P", "O"], "n": 2},
    "design_material_band_gap": {"property": "band_gap", "target": 1.5, "n": 2},
    "guide_rna": {"dna": "ATGCTGACCGGTTACAGGCTAGCTAGCTGGACCTAGGTCGAGG", "n": 2},
}


FAST = {"design_rna", "design_material"}  # the rest are @slow: beams, OPSIN's JVM and the namers take a while on CPU


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(TASK_BODIES)])
def test_every_task_endpoint_answers(client, case):
    task = next(t for t in sorted(TASK_BODIES, key=len) if case.startswith(t))
    r = client.post(f"/v1/tasks/{task}", json=TASK_BODIES[case])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and all(isinstance(g["valid"], bool) for g in results)
    for g in results:
        if g["tag"] == "material" and "formula" in g:
            assert isinstance(g["smact_valid"], bool)
        if g["tag"] == "rna" and g["valid"]:
            assert len(g["structure"]) == len(g["canonical"])


def test_classify_endpoint(client):
    r = client.post("/v1/tasks/classify", json={"question": "Can <mol>CCO</mol> traverse the blood-brain barrier?"})
    assert r.status_code == 200 and 0.0 <= r.json()["p_yes"] <= 1.0


BAD = [
    ("post", "/v1/tasks/retrosynthesis", {"product": "C1CC"}, 422, "RDKit cannot parse"),
    ("post", "/v1/tasks/retrosynthesis", {"product": "CX"}, 422, "position 1"),
    ("post", "/v1/tasks/retrosynthesis", {"product": "C" * 600}, 413, "limit is 500"),
    ("post", "/v1/tasks/retrosynthesis", {"product": "CCO", "k": 99}, 422, "k=99"),
    ("post", "/v1/tasks/retrosynthesis", {"smiles": "CCO"}, 422, "product"),
    ("post", "/v1/tasks/guide_rna", {"dna": "ATGQ"}, 422, "not in the alphabet"),
    ("post", "/v1/tasks/classify", {"question": "Does <protein>MK1</protein> fold?"}, 422, "protein"),
    ("post", "/v1/tasks/optimize_molecule", {"smiles": "CCO", "goal": "make it purple"}, 422, "goal"),
    ("post", "/v1/tasks/retrosynthesis", {"product": "CCO", "max_new_tokens": 9999}, 422, "max_new_tokens"),
    ("post", "/v1/tasks/design_material", {"elements": ["Li", "Xx"]}, 422, "not an element"),
    ("post", "/v1/tasks/design_material", {}, 422, "elements"),
    ("post", "/v1/tasks/teleport", {}, 404, "retrosynthesis"),
    ("post", "/v1/completions", {"prompt": "x", "max_tokens": 10_000}, 422, "max_tokens"),
    ("post", "/v1/completions", {"prompt": "<protein>MK1</protein>"}, 422, "alphabet"),
    ("post", "/v1/completions", {"max_tokens": 3}, 422, "prompt"),
    ("post", "/v1/completions", {"model": "gpt-4o", "prompt": "<mol>"}, 404, "does not exist"),
    ("post", "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404, "tiny"),
    ("post", "/v1/tasks/classify", {"question": "Does dopamine cross the BBB?"}, 422, "no tagged entity"),
    ("post", "/v1/tasks/guide_rna", {"dna": "ACGUACGU"}, 422, "position 3"),
    ("post", "/v1/completions", {"prompt": "x" * 30_000}, 413, "bytes"),
    ("post", "/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, 422, "user message"),
    ("get", "/v1/draw/molecule?smiles=c1cccc", None, 422, "RDKit"),
    ("get", "/v1/nothing", None, 404, "no route"),
]


@pytest.mark.parametrize("method,path,body,status,needle", BAD, ids=[f"{b[1]}-{b[3]}-{b[4][:12]}" for b in BAD])
def test_bad_inputs_get_4xx_json_naming_the_problem(client, method, path, body, status, needle):
    r = client.post(path, json=body) if method == "post" else client.get(path)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_malformed_json_is_400(client):
    r = client.post("/v1/completions", content=b'{"prompt": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]


def test_api_key(model):
    from fastapi.testclient import TestClient

    from naturelm.serve.app import ServeConfig, create_app

    with TestClient(create_app(model, ServeConfig(api_key="s3cret", default_new_tokens=4))) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").json()["auth"] is True  # health and the playground stay open


def test_drawings_are_svg(client):
    for path, params in [("/v1/draw/molecule", {"smiles": "CC(=O)Nc1ccc(O)cc1"}),
                         ("/v1/draw/reaction", {"reactants": "CC(=O)Cl.Nc1ccc(O)cc1", "product": "CC(=O)Nc1ccc(O)cc1"}),
                         ("/v1/draw/rna", {"sequence": "GGGAAACUUCGGUUUCCC"})]:
        r = client.get(path, params=params)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in r.text
    r = client.get("/v1/draw/reaction", params={"reactants": "CC(=O)Cl", "product": "C1CC"})
    assert r.status_code == 422 and "product" in r.json()["error"]["message"]


def test_health_docs_and_playground(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and "retrosynthesis" in health["tasks"]
    assert health["decoding"] == "PyTorch float32"
    spec = client.get("/openapi.json").json()
    assert "/v1/tasks/retrosynthesis" in spec["paths"] and "/v1/chat/completions" in spec["paths"]
    assert "NatureLM playground" in client.get("/").text
    assert "openapi.json" in client.get("/docs").text
    assert "TASKS" in client.get("/static/app.js").text


def test_concurrent_requests_share_batches(client):
    import concurrent.futures

    before = client.get("/health").json()["batching"]
    body = {"prompt": "Instruction: go\n\n\nResponse: ", "max_tokens": 4, "temperature": 0}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/v1/completions", json=body).status_code, range(8)))
    after = client.get("/health").json()["batching"]
    assert codes == [200] * 8
    assert after["items"] - before["items"] == 8 and after["batches"] - before["batches"] < 8


def test_cli_errors_are_clear(tmp_path, monkeypatch):
    from naturelm.errors import ConfigError, DataSourceMissing
    from naturelm.serve import backends, cli

    monkeypatch.setattr(cli, "DEFAULT_CHECKPOINTS", (tmp_path / "none",))
    with pytest.raises(DataSourceMissing, match="--model"):
        cli.default_checkpoint()
    with pytest.raises(ConfigError, match="engine or vllm"):
        backends.load_model(tmp_path, "tpu")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(DataSourceMissing, match="pip install vllm"):
            backends.load_model(tmp_path, "vllm")


def test_vllm_adapter_routes_task_methods_through_the_backend(model):
    """`--backend vllm` keeps the task methods; every generation goes to the backend (here a recording stand-in)."""
    from types import SimpleNamespace

    from naturelm.errors import ConfigError
    from naturelm.serve.backends import VLLMNatureLM

    seen = []

    def generate(prompts, **kw):
        seen.append((prompts, kw))
        return model.generate(prompts, **kw)

    served = VLLMNatureLM(SimpleNamespace(tok=model.tokenizer, generate=generate))
    (gens,) = served.retrosynthesis(["CC(=O)Nc1ccc(O)cc1"], k=2, max_new_tokens=8)
    assert seen and seen[0][1]["num_beams"] == 2 and "<product>CC(=O)Nc1ccc(O)cc1</product>" in seen[0][0][0]
    assert 1 <= len(gens) <= 2 and all(isinstance(g.valid, bool) for g in gens)
    with pytest.raises(ConfigError, match="--backend engine"):
        served.classify("Is it?")


def test_stream_is_server_sent_events(client):
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "stream": True,
                                                  "max_tokens": 4})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


# ---------------------------------------------------------------------------------------------- a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="needs Debian chromium + chromium-driver: apt-get update && apt-get install -y chromium "
                           "chromium-driver")
def test_playground_in_headless_chromium(live_server, tmp_path):
    """Load the page, run a retrosynthesis from an example, see an SVG drawing, then an inline error."""
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS + (f"--user-data-dir={tmp_path / 'profile'}",):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    drawn = ("return [...document.querySelectorAll('img.drawing')]"
             ".filter(i => i.complete && i.naturalWidth > 0).map(i => i.dataset.kind)")
    try:
        driver.get(live_server + "/")
        WebDriverWait(driver, 30).until(lambda d: "ready" in d.find_element(By.ID, "status").text)
        assert driver.find_element(By.ID, "task").get_attribute("value") == "retrosynthesis"
        next(b for b in driver.find_elements(By.CSS_SELECTOR, "#examples button") if b.text == "Paracetamol").click()
        assert driver.find_element(By.ID, "f-product").get_attribute("value") == "CC(=O)Nc1ccc(O)cc1"
        k = driver.find_element(By.ID, "f-k")
        k.clear()
        k.send_keys("3")
        driver.find_element(By.ID, "run").click()
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card.result"))
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(drawn))
        assert "molecule" in driver.execute_script(drawn)  # the product, drawn by RDKit as SVG
        badges = [b.text for b in driver.find_elements(By.CSS_SELECTOR, ".card.result .badge")]
        assert badges and set(badges) <= {"parses", "does not parse", "meets request", "fails checks", "unverified"}
        assert all(s.text.startswith("source: ") for s in driver.find_elements(By.CSS_SELECTOR, ".card.result .source"))
        if "parses" in badges:  # a valid candidate is drawn as reactants → product
            WebDriverWait(driver, 30).until(lambda d: "reaction" in d.execute_script(drawn))
        assert driver.find_element(By.ID, "error").get_attribute("hidden")
        out = REPO / "tests" / "artifacts"
        out.mkdir(exist_ok=True)
        driver.save_screenshot(str(out / "playground_retrosynthesis.png"))

        product = driver.find_element(By.ID, "f-product")
        product.clear()
        product.send_keys("C1CC")
        driver.find_element(By.ID, "run").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "422" in driver.find_element(By.ID, "error").text and "RDKit" in driver.find_element(By.ID, "error").text
        driver.save_screenshot(str(out / "playground_error.png"))
    finally:
        driver.quit()
