"""Cooperative cancellation and time budgets: work stops at its next check once nobody waits for its answer, or
once it has run longer than its budget.

A caller (the server's batch worker) runs work inside `cancel_when(check)`; the engine calls `checkpoint()`
between decoding steps and scoring chunks, which raises `Cancelled` once `check()` is true. The check is
thread-local, so work in other threads is never affected.

Slow tools run under a per-call budget set by the caller with `time_budgets(opsin=30, retrosim=30)` (thread-local;
none outside it): the tool starts a `Deadline(name)` per call and calls `deadline.check()` in its loop, which
raises `Cancelled` as `checkpoint()` does, or `BudgetExceeded` once the call has run for longer than its budget.
Users: `tools/opsin.py` (polls the OPSIN JVM and kills it), `tasks/baselines/template_analogy.py` (RetroSim and
forward-template ranking: checked before each neighbour's template is applied).
"""
from __future__ import annotations

import threading
import time
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


class BudgetExceeded(NatureLMError):
    """A tool call ran longer than its time budget (`time_budgets`) and was stopped."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} ran longer than its {seconds:g} s budget and was stopped")
        self.what, self.seconds = what, seconds


@contextmanager
def time_budgets(**seconds: float | None) -> Iterator[None]:
    """Within the block (this thread only), each call of the named tools may run `seconds[name]` seconds."""
    previous = getattr(_local, "budgets", {})
    _local.budgets = {**previous, **seconds}
    try:
        yield
    finally:
        _local.budgets = previous


class Deadline:
    """One call of tool `what`: `check()` raises Cancelled (see `checkpoint`) or BudgetExceeded once the call has
    run past this thread's budget for `what` (no budget: never)."""

    def __init__(self, what: str):
        self.what = what
        self.seconds = getattr(_local, "budgets", {}).get(what)
        self.end = None if self.seconds is None else time.monotonic() + self.seconds

    def check(self) -> None:
        checkpoint()
        if self.end is not None and time.monotonic() >= self.end:
            raise BudgetExceeded(self.what, self.seconds)
