"""Shared fixtures: a tiny random Llama checkpoint (default NatureTokenizer), the facade on it, one torch thread."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the repository (found from a git worktree too)
USPTO_DIR = next((p / "shared" / "data" / "uspto50k" for p in REPO.parents if (p / "shared" / "data" / "uspto50k").is_dir()),
                 REPO.parent / "shared" / "data" / "uspto50k")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama checkpoint directory (safetensors + config + tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from naturelm.language import NatureTokenizer

    torch.manual_seed(0)
    tok = NatureTokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny_ckpt")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`).

    Tiny models decode far faster on one thread than on two contended ones.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def short_generation(monkeypatch):
    """NatureLM.generate capped at 8 new tokens and no redraws: a random model never closes its tag, so tests that
    evaluate the random tiny checkpoint stay fast."""
    from naturelm.api import NatureLM

    real = NatureLM.generate

    def short(self, prompts, **kw):
        kw.update(max_new_tokens=8, max_retries=0)
        return real(self, prompts, **kw)

    monkeypatch.setattr(NatureLM, "generate", short)


@pytest.fixture(scope="module")
def lm(tiny_checkpoint):
    """The tiny checkpoint loaded as a NatureLM facade, one per test module."""
    from naturelm.api import NatureLM

    return NatureLM.load(tiny_checkpoint)


@pytest.fixture(scope="session")
def uspto_dir() -> Path:
    if not (USPTO_DIR / "USPTO_50k_MHN_prepro.csv.gz").is_file():
        pytest.skip("USPTO-50k not found at ../shared/data/uspto50k")
    return USPTO_DIR
