"""`naturelm serve`: the HTTP server (OpenAI-compatible API, task endpoints, playground)."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from naturelm.errors import DataSourceMissing, NatureLMError

DEFAULT_CHECKPOINTS = (Path(__file__).resolve().parents[2] / "checkpoints" / "naturelm-tiny",
                       Path(__file__).resolve().parents[1] / "checkpoints" / "naturelm-tiny")


def default_checkpoint() -> Path:
    """The shipped checkpoint (checkpoints/naturelm-tiny), or DataSourceMissing saying what to pass."""
    for path in DEFAULT_CHECKPOINTS:
        if (path / "config.json").is_file():
            return path
    raise DataSourceMissing("the default checkpoint checkpoints/naturelm-tiny",
                            "pass --model PATH (a NatureLM checkpoint directory)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def allowed_hosts_for(host: str, configured: tuple[str, ...]) -> tuple[str, ...] | None:
    """Host header values the server answers: the configured ones; else the loopback names for a loopback bind
    (so a web page cannot reach a key-less local server by DNS rebinding), the address itself for a specific
    bind, and any (None) for a wildcard bind such as 0.0.0.0."""
    if configured:
        return tuple(configured)
    if _is_loopback(host):
        from naturelm.serve.app import LOOPBACK_HOSTS

        return tuple(dict.fromkeys((host, *LOOPBACK_HOSTS)))
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return None
    except ValueError:
        pass
    return (host,)


def serve(
    model: Path = typer.Option(None, "--model", help="checkpoint directory (default: checkpoints/naturelm-tiny)"),
    host: str = typer.Option("127.0.0.1", help="bind address; loopback by default"),
    port: int = typer.Option(8000, help="TCP port"),
    backend: str = typer.Option("engine", help="engine (ours, CPU or GPU) or vllm (GPU, needs vllm installed)"),
    api_key: str = typer.Option(None, "--api-key", envvar="NATURELM_API_KEY",
                                help="require 'Authorization: Bearer KEY' on /v1/*"),
    max_body_bytes: int = typer.Option(1_000_000, help="largest request body (413 above)"),
    max_new_tokens: int = typer.Option(512, help="largest max_tokens a request may ask for (422 above)"),
    max_entity_chars: int = typer.Option(4096, help="longest SMILES/sequence/prompt in characters (413 above)"),
    max_batch: int = typer.Option(32, help="most requests sharing one generate call"),
    max_wait_ms: float = typer.Option(5.0, help="how long the batcher collects requests"),
    timeout: float = typer.Option(120.0, help="per-request generation timeout in seconds (408 after)"),
    draw_budget: float = typer.Option(10.0, help="seconds each RDKit drawing may take (its process is killed; 408)"),
    opsin_budget: float = typer.Option(30.0, help="seconds each OPSIN naming check may take (the JVM is killed; 408)"),
    retrosim_budget: float = typer.Option(30.0, help="seconds each product's RetroSim / template ranking may take "
                                                     "(stopped at its next template; 408)"),
    name: str = typer.Option(None, help="model id reported by /v1/models (default: the directory name)"),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="torch CPU threads (default: OMP_NUM_THREADS, else 1 for a small model, else one "
                                     "per core up to 8; naturelm.generate.threads)"),
    quantize: str = typer.Option(None, "--quantize", help="fp16, int8, int8-dynamic or int4: quantized CPU decoding; gguf-f16, gguf-q8_0 or gguf-q4_0: decoding on llama.cpp (docs/inference.md); default: as stored"),
    allowed_host: list[str] = typer.Option(None, "--allowed-host",
                                           help="Host header value to answer (repeatable); default: the bind "
                                                "address (loopback: localhost, 127.0.0.1, ::1), any for 0.0.0.0"),
) -> None:
    """Serve a checkpoint: OpenAI-compatible /v1 API, /v1/tasks/*, the playground at / and /docs."""
    import uvicorn

    from naturelm.serve.app import ServeConfig, create_app
    from naturelm.serve.backends import load_model

    try:
        path = Path(model) if model is not None else default_checkpoint()
        loaded = load_model(path, backend, quantize=quantize, threads=threads)
    except NatureLMError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if not _is_loopback(host) and not api_key:
        typer.secho(f"warning: serving on {host} without --api-key: anyone who can reach it can use it",
                    fg=typer.colors.YELLOW, err=True)
    config = ServeConfig(model_name=name or path.name, api_key=api_key, max_body_bytes=max_body_bytes,
                         max_new_tokens=max_new_tokens, max_entity_chars=max_entity_chars, max_batch=max_batch,
                         max_wait_ms=max_wait_ms, timeout_s=timeout, draw_budget_s=draw_budget,
                         opsin_budget_s=opsin_budget, retrosim_budget_s=retrosim_budget,
                         allowed_hosts=allowed_hosts_for(host, tuple(allowed_host or ())))
    app = create_app(loaded, config)
    typer.echo(f"NatureLM {config.model_name} ({backend}) on http://{host}:{port}  (playground /, docs /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    typer.run(serve)
