"""Torch thread policy for inference (naturelm.generate.threads)."""
from __future__ import annotations

import pytest

from naturelm.errors import ConfigError
from naturelm.generate.threads import MAX_THREADS, SMALL_MODEL_PARAMS, available_cores, inference_threads


def test_omp_num_threads_is_respected():
    assert inference_threads(10, env={"OMP_NUM_THREADS": "3"}) == 3
    assert inference_threads(10**10, env={"OMP_NUM_THREADS": "1"}) == 1
    with pytest.raises(ConfigError, match="whole number"):
        inference_threads(10, env={"OMP_NUM_THREADS": "two"})
    with pytest.raises(ConfigError, match="1 or more"):
        inference_threads(10, env={"OMP_NUM_THREADS": "0"})


def test_small_models_decode_on_one_thread_large_ones_on_the_cores():
    assert inference_threads(SMALL_MODEL_PARAMS - 1, env={}) == 1
    assert inference_threads(SMALL_MODEL_PARAMS, env={}) == min(available_cores(), MAX_THREADS)
    assert inference_threads(None, env={}) == min(available_cores(), MAX_THREADS)


def test_load_sets_the_threads(tiny_checkpoint, monkeypatch):
    import torch

    from naturelm.api import NatureLM

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        NatureLM.load(tiny_checkpoint)
        assert torch.get_num_threads() == 1  # the tiny test model is small
        NatureLM.load(tiny_checkpoint, threads=2)
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        NatureLM.load(tiny_checkpoint)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_quantized_model_is_sized_by_its_checkpoint(tiny_checkpoint, monkeypatch):
    """Quantized layers hold their weights in buffers or fbgemm's packed copies, not parameters: the policy counts
    the checkpoint's parameters (a quantized large model must not fall to one thread)."""
    import torch

    import naturelm.generate.threads as threads
    from naturelm.api import NatureLM

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        plain = NatureLM.load(tiny_checkpoint)
        n = sum(p.numel() for p in plain.model.parameters())
        monkeypatch.setattr(threads, "SMALL_MODEL_PARAMS", n)  # the test model now counts as large (n >= n)
        for mode in ("int8-dynamic", "fp16", "int8"):
            torch.set_num_threads(1)
            lm = NatureLM.load(tiny_checkpoint, quantize=mode)
            assert sum(p.numel() for p in lm.model.parameters()) < n  # what the old count saw
            assert torch.get_num_threads() == min(threads.available_cores(), threads.MAX_THREADS), mode
    finally:
        torch.set_num_threads(before)
