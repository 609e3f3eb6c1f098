"""Bounded load test of `naturelm serve` on loopback: 32 concurrent clients vs one request at a time, same run.

Starts the real server (uvicorn, separate process) on a free 127.0.0.1 port with the shipped
checkpoints/naturelm-tiny (or --model; without either, a randomly initialised `tiny` config, said so in the
JSON), sends the same chat requests one at a time and then from 32 concurrent clients, and writes throughput,
p50/p99 latency, the server's batching counters and the error count to bench/results/serve_load.json.
Exits non-zero when any request failed.

    nice -n 10 .venv/bin/python bench/serve_load.py [--clients 32] [--requests 128] [--sequential 32] [--max-tokens 32]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = ["CC(=O)Nc1ccc(O)cc1", "CC(=O)Oc1ccccc1C(=O)O", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "COc1ccc2[nH]cc(CCN)c2c1",
            "O=C(O)c1ccccc1O", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "Cc1ccc(S(=O)(=O)N)cc1", "OCC1OC(O)C(O)C(O)C1O"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_dir(arg: str | None, tmp: Path) -> tuple[Path, str]:
    """--model, else the shipped tiny checkpoint, else a random-weight `tiny` config saved to tmp."""
    if arg:
        return Path(arg), arg
    shipped = REPO / "checkpoints" / "naturelm-tiny"
    if (shipped / "config.json").is_file():
        return shipped, "checkpoints/naturelm-tiny"
    from naturelm.language import NatureTokenizer
    from naturelm.model.configs import build_model

    tok = NatureTokenizer()
    build_model("tiny", tokenizer=tok, seed=0).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return tmp, "random-init `tiny` config (checkpoints/naturelm-tiny not found)"


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


async def _phase(base: str, bodies: list[dict], clients: int, desc: str) -> dict:
    """Send `bodies` from `clients` concurrent workers; latency per request, totals, errors by status."""
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies, tokens, statuses = [], 0, {}
    bar = tqdm(total=len(bodies), desc=desc, unit="req")

    async def worker(client):
        nonlocal tokens
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/chat/completions", json=body)
                status = r.status_code
                if status == 200:
                    tokens += r.json()["usage"]["completion_tokens"]
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - t)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            bar.update()

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    wall = time.perf_counter() - start
    bar.close()
    ok = statuses.get("200", 0)
    return {"clients": clients, "requests": len(bodies), "ok": ok, "errors": len(bodies) - ok, "statuses": statuses,
            "wall_s": round(wall, 2), "requests_per_s": round(ok / wall, 3),
            "completion_tokens_per_s": round(tokens / wall, 1),
            "latency_p50_s": round(_percentile(latencies, 50), 3), "latency_p99_s": round(_percentile(latencies, 99), 3),
            "latency_mean_s": round(sum(latencies) / len(latencies), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint directory (default: checkpoints/naturelm-tiny)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=128, help="requests in the concurrent phase")
    ap.add_argument("--sequential", type=int, default=32, help="requests in the one-at-a-time phase")
    ap.add_argument("--max-tokens", type=int, default=32)
    add_output_args(ap)
    args = ap.parse_args()
    args.out = str(output_path(args, "serve_load.json"))

    bodies = [{"messages": [{"role": "user", "content":
               f"Please suggest possible reactants for the given product <product>{PRODUCTS[i % len(PRODUCTS)]}</product>"}],
               "max_tokens": args.max_tokens, "temperature": 0.7} for i in range(args.requests)]
    with tempfile.TemporaryDirectory() as tmp:
        model, model_desc = _model_dir(args.model, Path(tmp))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "naturelm.serve.cli", "--model", str(model), "--port", str(port),
                                   "--max-batch", str(args.clients)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            import httpx

            deadline = time.time() + 300
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the server exited with {server.returncode}")
                try:
                    if httpx.get(base + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline:
                    raise SystemExit("the server did not come up within 300 s")
                time.sleep(0.5)
            asyncio.run(_phase(base, bodies[:2], 1, "warm-up"))
            sequential = asyncio.run(_phase(base, bodies[:args.sequential], 1, "one at a time"))
            before = httpx.get(base + "/health").json()["batching"]
            concurrent = asyncio.run(_phase(base, bodies, args.clients, f"{args.clients} clients"))
            after = httpx.get(base + "/health").json()["batching"]
        finally:
            server.terminate()
            server.wait(timeout=30)

    batches = after["batches"] - before["batches"]
    result = {
        "benchmark": "serve_load", "model": model_desc, "backend": "engine", "device": "cpu",
        "settings": {"clients": args.clients, "max_tokens": args.max_tokens, "endpoint": "/v1/chat/completions",
                     "temperature": 0.7},
        "baseline_one_at_a_time": sequential, "concurrent": concurrent,
        "batching_during_concurrent": {"generate_calls": batches,
                                       "mean_requests_per_call": round((after["items"] - before["items"]) / max(batches, 1), 2),
                                       "max_requests_per_call": after["max_batch"]},
        "ratios": {"throughput_x": round(concurrent["requests_per_s"] / sequential["requests_per_s"], 2),
                   "tokens_per_s_x": round(concurrent["completion_tokens_per_s"] / sequential["completion_tokens_per_s"], 2),
                   "p50_latency_x": round(concurrent["latency_p50_s"] / sequential["latency_p50_s"], 2)},
        "server_errors": sum(v for k, v in concurrent["statuses"].items() if not k.isdigit() or int(k) >= 500)
                         + sum(v for k, v in sequential["statuses"].items() if not k.isdigit() or int(k) >= 500),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if concurrent["errors"] or sequential["errors"]:
        raise SystemExit(f"{concurrent['errors'] + sequential['errors']} requests failed")


if __name__ == "__main__":
    main()
