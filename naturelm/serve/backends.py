"""What the server generates with: our engine (`NatureLM`, CPU or GPU) or vLLM (GPU) behind the same contract."""
from __future__ import annotations

import inspect
from pathlib import Path

from naturelm.api import NatureLM
from naturelm.errors import ConfigError


class VLLMNatureLM(NatureLM):
    """NatureLM's task methods with every generation sent to a vLLM backend (`naturelm.generate.vllm_backend`).

    vLLM samples on its own, so constrained decoding is off; `classify` needs token log-probabilities from
    the engine and answers 422 here.
    """

    def __init__(self, backend, **options):
        # No HF model or Engine (the weights live in vLLM): take NatureLM's keyword defaults as attributes instead.
        params = inspect.signature(NatureLM.__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        for name, value in {**defaults, **options}.items():
            setattr(self, name, value)
        self.backend = backend

    @property
    def tokenizer(self):
        return self.backend.tok

    @property
    def decoding(self) -> str:
        return "vLLM"

    def generate(self, prompts, **kw):
        return self.backend.generate(prompts, **kw)

    def classify(self, question):
        raise ConfigError("classify needs token log-probabilities from the engine; serve with --backend engine")

    def retrosynthesis(self, product, k: int = 10, method: str = "auto", **kw):
        """The model's beams; ranking RetroSim's candidates needs the engine's log-probabilities."""
        if method == "ranked":
            raise ConfigError("method='ranked' scores candidates with the engine's log-probabilities; "
                              "serve with --backend engine")
        return super().retrosynthesis(product, k=k, method="model" if method == "auto" else method, **kw)


def load_model(path: Path, backend: str = "engine", quantize: str | None = None, threads: int | None = None):
    """A loaded model behind the `NatureLM.generate` contract and its task methods (`quantize`: the engine's
    fp16 / int8 / int8-dynamic / int4 CPU quantization or a gguf-* format decoded on llama.cpp; `threads`: CPU
    threads; see `NatureLM.load`)."""
    if backend == "engine":
        return NatureLM.load(path, quantize=quantize, threads=threads)
    if quantize is not None:
        raise ConfigError("--quantize applies to the engine backend (CPU); vLLM loads the checkpoint as stored")
    if backend == "vllm":
        from naturelm.generate.vllm_backend import VLLMBackend

        return VLLMNatureLM(VLLMBackend(path))  # DataSourceMissing with the install hint when vllm is absent
    raise ConfigError(f"unknown backend {backend!r}; choose engine or vllm")
