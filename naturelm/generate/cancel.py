"""Cooperative cancellation: generation stops at its next step once nobody waits for its answer.

A caller (the server's batch worker) runs work inside `cancel_when(check)`; the engine calls `checkpoint()`
between decoding steps and scoring chunks, which raises `Cancelled` once `check()` is true. The check is
thread-local, so work in other threads is never affected.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from naturelm.errors import NatureLMError

_local = threading.local()


class Cancelled(NatureLMError):
    """The work was stopped because every request waiting for it timed out or went away."""


@contextmanager
def cancel_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block (this thread only), `checkpoint()` raises Cancelled once `check()` returns True."""
    previous = getattr(_local, "check", None)
    _local.check = check
    try:
        yield
    finally:
        _local.check = previous


def checkpoint() -> None:
    """Raise Cancelled if the work this thread is doing has been cancelled (a no-op outside `cancel_when`)."""
    check = getattr(_local, "check", None)
    if check is not None and check():
        raise Cancelled("generation cancelled: no request waits for it any more")
