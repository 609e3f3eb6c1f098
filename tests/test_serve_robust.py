"""The server under careless or hostile input: every field checked at the boundary (4xx naming it), unexpected
failures as logged 500s with a request id, requests isolated inside batches, admission by work, cancellation,
the Host check, and /health answering while drawings and generation run."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time

import pytest

from naturelm.generate.cancel import Cancelled, cancel_when, checkpoint
from naturelm.serve.batching import Batcher, GenerationTimeout, QueueFull

pytest.importorskip("fastapi")
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- the batcher
def test_a_failing_shared_call_is_retried_per_item_and_no_error_text_crosses():
    calls = []

    def handler(key, payloads):
        calls.append(list(payloads))
        if any(p.startswith("bad") for p in payloads):
            raise ValueError(f"cannot read {[p for p in payloads if p.startswith('bad')]}")
        return [p.upper() for p in payloads]

    async def main():
        b = Batcher(handler, max_batch=16, max_wait_ms=30)
        await b.start()
        try:
            names = ["a", "b", "bad-secret", "c", "d"]
            return names, await asyncio.gather(*(b.submit("k", n) for n in names), return_exceptions=True), b.stats
        finally:
            await b.stop()

    names, out, stats = asyncio.run(main())
    assert out[:2] == ["A", "B"] and out[3:] == ["C", "D"]
    assert isinstance(out[2], ValueError) and "bad-secret" in str(out[2])
    assert len(calls[0]) == 5 and sorted(map(tuple, calls[1:])) == [(n,) for n in sorted(names)]  # then one by one
    assert stats.retried == 5


def test_admission_counts_work_and_a_refused_request_runs_nothing():
    seen = []

    def handler(key, payloads):
        seen.extend(payloads)
        time.sleep(0.2)
        return payloads

    async def main():
        b = Batcher(handler, max_batch=4, max_wait_ms=1, max_queued_cost=1000)
        await b.start()
        try:
            first = asyncio.create_task(b.submit_many("k", ["ok"], 600))
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFull, match="600 units"):
                await b.submit_many("k", [f"big{i}" for i in range(8)], 100)  # 800 more: refused whole
            assert await first == ["ok"]
            assert b.stats.queued_cost == 0 and b.stats.refused == 1
        finally:
            await b.stop()

    asyncio.run(main())
    assert seen == ["ok"]


def test_timed_out_work_is_cancelled_at_its_next_step():
    steps, stopped = [], threading.Event()

    def handler(key, payloads):
        try:
            for i in range(1000):  # a "generation" of 1,000 steps of 10 ms
                checkpoint()
                steps.append(i)
                time.sleep(0.01)
        except Cancelled:
            stopped.set()
            raise
        return payloads

    async def main():
        b = Batcher(handler, max_wait_ms=1, timeout_s=0.2)
        await b.start()
        try:
            with pytest.raises(GenerationTimeout):
                await b.submit("k", 1, cost=5)
            await asyncio.sleep(0.3)
            assert b.stats.queued_cost == 0
        finally:
            await b.stop()

    asyncio.run(main())
    assert stopped.wait(2) and len(steps) < 100


def test_checkpoint_is_thread_local_and_a_no_op_outside():
    checkpoint()
    with cancel_when(lambda: True):
        with pytest.raises(Cancelled):
            checkpoint()
        t = threading.Thread(target=checkpoint)  # other threads are not affected
        t.start(), t.join()
    checkpoint()


# ---------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    from naturelm.serve.backends import load_model

    return load_model(tiny_checkpoint, "engine")


def _app(model, **kw):
    from naturelm.serve.app import ServeConfig, create_app

    cfg = dict(model_name="tiny", max_body_bytes=200_000, max_new_tokens=64, default_new_tokens=16,
               task_new_tokens=16, max_entity_chars=500, max_n=8)
    return create_app(model, ServeConfig(**{**cfg, **kw}))


@pytest.fixture(scope="module")
def client(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model), raise_server_exceptions=False) as c:
        yield c


def _raw(client, path, text: str):
    return client.post(path, content=text.encode("utf-8"), headers={"content-type": "application/json"})


CHAT = "/v1/chat/completions"
BAD = [  # (path, JSON text, status, field named in the message)
    (CHAT, '{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}', 422, "text"),
    (CHAT, '{"messages": [{"role": "user", "content": [{"type": "text", "text": null}]}]}', 422, "user message"),
    (CHAT, '{"messages": [{"role": "user", "content": [{"type": "text", "text": ["a"]}]}]}', 422, "text"),
    (CHAT, '{"messages": [{"role": "user", "content": [{"type": "text", "text": {"a": 1}}]}]}', 422, "text"),
    (CHAT, '{"messages": [{"role": "user", "content": [5]}]}', 422, "content"),
    (CHAT, '{"messages": [{"role": "user", "content": "hi \\ud800"}]}', 422, "surrogate"),
    ("/v1/completions", '{"prompt": "x\\udfff"}', 422, "surrogate"),
    ("/v1/completions", '{"prompt": ["ok", "\\ud800"]}', 422, "prompt"),
    ("/v1/completions", '{"prompt": "x", "seed": 18446744073709551616}', 422, "seed"),
    ("/v1/completions", '{"prompt": "x", "seed": -1}', 422, "seed"),
    ("/v1/completions", '{"prompt": "x", "temperature": 1e-40}', 422, "temperature"),
    ("/v1/completions", '{"prompt": "x", "temperature": NaN}', 422, "temperature"),
    ("/v1/completions", '{"prompt": "x", "top_p": 1e400}', 422, "top_p"),
    ("/v1/completions", '{"prompt": "x", "n": 0}', 422, "n"),
    ("/v1/completions", '{"prompt": "</mol>"}', 422, "prompt"),
    ("/v1/completions", '{"prompt": ["<protein>"], "n": 8, "max_tokens": 64, "stop": "\\ud800"}', 422, "stop"),
    ("/v1/completions", json.dumps({"prompt": ["<protein>"] * 32, "n": 8, "max_tokens": 64}), 413, "prompt"),
    ("/v1/completions", json.dumps({"prompt": ["CCO" * 30] * 8}), 413, "prompt"),
    ("/v1/tasks/generate_molecules", '{"properties": {"QED": NaN}}', 422, "QED"),
    ("/v1/tasks/generate_molecules", '{"properties": {"QED": Infinity}}', 422, "QED"),
    ("/v1/tasks/generate_molecules", '{"properties": {"QED": 1e400}}', 422, "QED"),
    ("/v1/tasks/generate_molecules", '{"seed": 9223372036854775808}', 422, "seed"),
    ("/v1/tasks/generate_molecules", '{"temperature": 1e-40}', 422, "temperature"),
    ("/v1/tasks/design_protein", '{"description": "soluble \\ud800"}', 422, "surrogate"),
    ("/v1/tasks/design_material", json.dumps({"elements": ["Li"] * 8000}), 422, "elements"),
    ("/v1/tasks/design_material", '{"property": "band_gap", "target": 1e400}', 422, "target"),
    ("/v1/tasks/retrosynthesis", json.dumps({"product": "C" * 300, "method": "ranked"}), 413, "ranked"),
    ("/v1/tasks/classify", '{"question": "\\ud800?"}', 422, "surrogate"),
]


@pytest.mark.parametrize("path,text,status,needle", BAD, ids=[f"{i}-{b[0].rsplit('/', 1)[1]}" for i, b in enumerate(BAD)])
def test_every_bad_field_is_a_4xx_naming_it(client, path, text, status, needle):
    r = _raw(client, path, text)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert needle in error["message"] + str(error["param"]), error


def test_material_elements_count_against_the_input_limit(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model, max_entity_chars=100)) as c:
        r = c.post("/v1/tasks/design_material", json={"elements": ["Li", "Fe"] * 15, "n": 1})
    assert r.status_code == 413 and r.json()["error"]["param"] == "elements"


def test_an_unexpected_failure_is_a_500_with_a_logged_request_id(model, caplog):
    from fastapi.testclient import TestClient

    class Broken:
        tokenizer = model.tokenizer

        def generate(self, *a, **kw):
            raise RuntimeError("secret internal detail")

    with TestClient(_app(Broken()), raise_server_exceptions=False) as c, caplog.at_level("ERROR"):
        r = c.post("/v1/completions", json={"prompt": "<mol>", "max_tokens": 4})
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and "secret" not in r.text
    assert error["request_id"] == r.headers["x-request-id"]
    assert error["request_id"] in caplog.text and "secret internal detail" in caplog.text


def test_the_openapi_schema_documents_the_real_error_shape(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(spec)
    for path in ("/v1/completions", "/v1/tasks/retrosynthesis", "/v1/draw/molecule"):
        op = next(iter(spec["paths"][path].values()))
        for code in ("400", "401", "404", "408", "413", "422", "429", "500"):
            assert op["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody"), code


def test_host_header_is_checked_when_configured(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model, allowed_hosts=("localhost", "127.0.0.1", "::1")), base_url="http://localhost:8000") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/health", headers={"host": "[::1]:8000"}).status_code == 200
        r = c.get("/health", headers={"host": "evil.example:8000"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"


def test_cli_binds_loopback_to_loopback_host_names():
    from naturelm.serve.cli import allowed_hosts_for

    assert "localhost" in allowed_hosts_for("127.0.0.1", ()) and "evil.example" not in allowed_hosts_for("127.0.0.1", ())
    assert allowed_hosts_for("0.0.0.0", ()) is None  # any address: any host unless configured
    assert allowed_hosts_for("0.0.0.0", ("naturelm.lab",)) == ("naturelm.lab",)
    assert allowed_hosts_for("10.1.2.3", ()) == ("10.1.2.3",)


def test_small_max_new_tokens_serves_requests_without_max_tokens(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model, max_new_tokens=8, default_new_tokens=128, task_new_tokens=256)) as c:
        assert c.post("/v1/completions", json={"prompt": "<mol>"}).status_code == 200
        assert c.post("/v1/tasks/design_rna", json={}).status_code == 200


def test_a_completion_that_cannot_be_encoded_again_still_counts_its_tokens(model):
    from naturelm.serve.openai_routes import _count_tokens

    big = "<material>" + " ".join(["Li"] * 600) + " 225</material>"
    assert _count_tokens(model, big) >= 600


def test_bad_prompts_in_concurrent_batches_change_no_good_answer(client):
    """Seeded requests run in generate calls of their own, so each good answer must equal its answer alone exactly;
    unseeded ones share batches with each other (and would with any bad prompt that got past validation)."""
    seeded = [{"prompt": p, "max_tokens": 12, "temperature": 0.7, "seed": 7} for p in ("<mol>", "<protein>", "<rna>")]
    shared = [{"prompt": p, "max_tokens": 12, "temperature": 0} for p in ("<mol>", "<mol>C")]
    bad = [{"prompt": p, "max_tokens": 12, "temperature": 0} for p in ("</mol>", "<mol>Q</mol>", "<mol><mol>")]
    alone = [client.post("/v1/completions", json=b).json()["choices"][0]["text"] for b in seeded]
    bodies = (seeded + shared + bad) * 3
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: client.post("/v1/completions", json=b), bodies))
    for body, r in zip(bodies, answers):
        if body in bad:
            assert r.status_code == 422 and r.json()["error"]["param"] == "prompt", r.text
            continue
        assert r.status_code == 200 and "error" not in r.json(), r.text
        if body in seeded:
            assert r.json()["choices"][0]["text"] == alone[seeded.index(body)]


def _health_latencies(client, stop: threading.Event) -> list[float]:
    out = []
    while not stop.is_set():
        t = time.perf_counter()
        assert client.get("/health").status_code == 200
        out.append(time.perf_counter() - t)
        time.sleep(0.02)
    return out


def test_health_answers_within_a_second_during_drawing_and_generation(model):
    """Drawings (one killed at its budget), a refused drawing, OPSIN naming checks and generations at once: /health
    keeps answering."""
    from fastapi.testclient import TestClient

    with TestClient(_app(model, max_new_tokens=256, max_entity_chars=4096, max_draw_atoms=2500,
                         draw_budget_s=1.5)) as c:
        work = [lambda i=i: c.get("/v1/draw/molecule", params={"smiles": "C1CC" + "C(CC)" * (40 + i) + "C1"})
                for i in range(6)]
        work += [lambda: c.get("/v1/draw/molecule", params={"smiles": "C" * 4000})]  # refused: too many atoms
        work += [lambda: c.get("/v1/draw/molecule", params={"smiles": "C" * 2000})]  # stopped at its 1.5 s budget
        work += [lambda: c.post("/v1/tasks/smiles_to_iupac", json={"smiles": "CCCCO", "k": 2})]  # OPSIN JVM
        work += [lambda: c.post("/v1/completions", json={"prompt": "<protein>", "max_tokens": 256, "n": 8,
                                                         "temperature": 1.0})] * 3
        work[0](), work[6](), work[8]()  # warm: the first call of each kind builds caches (startup cost)
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(len(work) + 1) as pool:
            probe = pool.submit(_health_latencies, c, stop)
            time.sleep(0.05)
            answers = [f.result() for f in [pool.submit(w) for w in work]]
            stop.set()
            latencies = probe.result()
        stopped = c.get("/health").json()["drawings_stopped"]
    codes = [r.status_code for r in answers]
    assert stopped == 1, (stopped, codes, [r.text[:200] for r in answers if r.status_code != 200])
    assert codes[:6] == [200] * 6 and codes[6] == 413 and codes[7] == 408 and codes[8:] == [200] * 4, codes
    assert answers[7].json()["error"]["code"] == "budget_exceeded"
    # the bound is 1 s; this machine is shared (an idle server's /health alone spikes to ~0.5 s under load), so a
    # single probe may exceed it when the OS deschedules the process: 95% must be under 1 s and none over 2.5 s
    latencies.sort()
    assert len(latencies) >= 5 and latencies[int(0.95 * len(latencies))] < 1.0 and latencies[-1] < 2.5, latencies


def test_a_drawing_over_its_budget_is_killed_and_the_next_one_is_drawn(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model, max_entity_chars=4096, max_draw_atoms=3000, draw_budget_s=0.5)) as c:
        assert c.get("/v1/draw/molecule", params={"smiles": "CCO"}).status_code == 200  # starts a worker
        t = time.perf_counter()
        r = c.get("/v1/draw/molecule", params={"smiles": "C" * 2500})
        took = time.perf_counter() - t
        assert r.status_code == 408 and r.json()["error"]["code"] == "budget_exceeded", r.text
        assert "drawing" in r.json()["error"]["message"] and took < 5.0
        assert c.get("/health").json()["drawings_stopped"] == 1
        r = c.get("/v1/draw/reaction", params={"reactants": "CC(=O)O.OCC", "product": "CC(=O)OCC"})
        assert r.status_code == 200 and r.text.startswith("<?xml")


def test_naming_checks_over_their_opsin_budget_answer_408(model):
    from fastapi.testclient import TestClient

    with TestClient(_app(model, opsin_budget_s=0.05)) as c:
        r = c.post("/v1/tasks/smiles_to_iupac", json={"smiles": "CCCCCCO", "k": 2})
        assert r.status_code == 408 and r.json()["error"]["code"] == "budget_exceeded", r.text
        assert "opsin" in r.json()["error"]["message"]


def _java_children() -> list[int]:
    import os
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ")[-1].split()
            comm = stat.read_text().split("(", 1)[1].split(")")[0]
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and comm == "java":
            found.append(int(stat.parent.name))
    return found


def test_opsin_is_killed_when_its_budget_runs_out_or_its_work_is_cancelled():
    import shutil

    from naturelm.generate.cancel import BudgetExceeded, time_budgets
    from naturelm.tools import opsin

    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    for stop in ("budget", "cancel"):
        name = f"{stop}-unique-{time.time_ns()}-ol"  # never cached
        t = time.perf_counter()
        with time_budgets(opsin=0.3 if stop == "budget" else None), cancel_when(lambda: stop == "cancel"):
            with pytest.raises(BudgetExceeded if stop == "budget" else Cancelled):
                opsin.names_to_smiles([name])
        assert time.perf_counter() - t < 2.0 and _java_children() == []
        assert name not in opsin._CACHE


def test_template_ranking_checks_its_budget_before_each_template():
    from naturelm.generate.cancel import BudgetExceeded, time_budgets
    from naturelm.tasks.baselines.template_analogy import propose_by_analogy

    calls = []

    def canonical(smiles):
        calls.append(smiles)
        return smiles

    args = ("CCO", [(0, 1.0), (1, 0.5)], ["[C:1][OH:2]>>[C:1][O:2]C"] * 2, [None, None], ["r0", "r1"], {}, canonical)
    with time_budgets(retrosim=0.0):
        with pytest.raises(BudgetExceeded, match="retrosim ran longer than its 0 s budget"):
            propose_by_analogy(*args, "retrosim", 5)
    assert calls == []  # stopped before the first template
    with time_budgets(templates=0.0):  # another tool's budget does not apply
        with pytest.raises(TypeError):  # (None fingerprints: it ran past the check)
            propose_by_analogy(*args, "retrosim", 5)


def test_a_worker_process_is_killed_when_its_client_goes_away():
    from naturelm.serve.batching import ClientGone
    from naturelm.serve.workers import ProcessWorkers, WorkTimeout

    async def gone():
        return True

    async def main():
        workers = ProcessWorkers(1)
        await workers.start()
        try:
            t = time.perf_counter()
            with pytest.raises(ClientGone):
                await workers.run("nap", time.sleep, (30,), budget_s=60, wait_s=5, disconnected=gone)
            assert time.perf_counter() - t < 5 and workers.killed == 1
            with pytest.raises(WorkTimeout, match="nap did not finish within its 0.3 s budget"):
                await workers.run("nap", time.sleep, (30,), budget_s=0.3, wait_s=5)
            assert workers.killed == 2
            assert await workers.run("sum", sum, ([1, 2, 3],), budget_s=30, wait_s=5) == 6  # a fresh worker
        finally:
            await workers.stop()

    asyncio.run(main())
