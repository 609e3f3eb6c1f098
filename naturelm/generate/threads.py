"""Torch CPU threads for inference, chosen on purpose rather than left at torch's default (every core).

Decoding a small model is a chain of small matrix products: a second thread saves little when the cores are free
and costs a lot when they are not (OpenMP threads wait on each other while other work holds the cores), which is
the usual state of a shared machine. bench/threads_contention.py measures 1 vs 2 threads, idle and under
contention, in the same run (bench/results/threads_contention.json).

Policy (`inference_threads`): OMP_NUM_THREADS when set (the user's choice is respected); else 1 thread for a model
under SMALL_MODEL_PARAMS parameters; else one thread per available core, at most MAX_THREADS.
"""
from __future__ import annotations

import os

from naturelm.errors import ConfigError

SMALL_MODEL_PARAMS = 100_000_000
MAX_THREADS = 8


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def inference_threads(n_params: int | None = None, env: dict | None = None) -> int:
    """Threads for decoding a model of `n_params` parameters (see the module docstring)."""
    env = os.environ if env is None else env
    value = env.get("OMP_NUM_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ConfigError(f"OMP_NUM_THREADS={value!r} is not a whole number of threads") from None
        if n < 1:
            raise ConfigError(f"OMP_NUM_THREADS={value!r}: use 1 or more threads")
        return n
    if n_params is not None and n_params < SMALL_MODEL_PARAMS:
        return 1
    return min(available_cores(), MAX_THREADS)


def set_inference_threads(model=None, threads: int | None = None) -> int:
    """Set torch's intra-op threads: `threads` when given, else `inference_threads` for the model. Returns it."""
    import torch

    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads}: use 1 or more")
    n_params = sum(p.numel() for p in model.parameters()) if model is not None else None
    n = threads if threads is not None else inference_threads(n_params)
    torch.set_num_threads(n)
    return n
