"""Killable worker processes for slow work that cannot check a deadline itself (RDKit drawing).

RDKit's layout and drawing run in C++ with no way to stop them from Python, so the server runs them in child
processes: `ProcessWorkers.run(fn, args, budget_s)` sends one call to an idle worker and waits for its answer
without blocking the event loop. When the budget runs out or the client disconnects, the worker is killed (the
work really stops) and a fresh one replaces it on the next call; the caller gets `WorkTimeout` or `ClientGone`.
Workers are forked from a forkserver that has imported `preload` once, so a replacement starts in milliseconds.
Calls and answers cross a pipe between this server and its own children (never data from a file).
"""
from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable
from typing import Any

from naturelm.serve.batching import ClientGone


class WorkTimeout(Exception):
    """A call ran (or waited for a worker) longer than its budget; its worker was killed."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} did not finish within its {seconds:g} s budget and was stopped")
        self.what, self.seconds = what, seconds


class WorkFailed(Exception):
    """The call raised in the worker (its type and message), or the worker died."""


def _serve(conn) -> None:
    """Worker process: run calls until the pipe closes."""
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, fn(*args)))
        except Exception as exc:  # noqa: BLE001 - reported to the caller as text, never re-raised there by type
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(1)
        self.conn.close()


class ProcessWorkers:
    """At most `size` calls at a time, each in its own killable worker process."""

    def __init__(self, size: int = 2, preload: tuple[str, ...] = ()):
        self.size, self.preload = size, preload
        self.killed = 0
        self._idle: asyncio.Queue | None = None
        self._ctx = None

    async def start(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(list(self.preload))
        self._idle = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(None)  # a slot; its worker starts on first use

    async def stop(self) -> None:
        while self._idle is not None and not self._idle.empty():
            worker = self._idle.get_nowait()
            if worker is not None:
                worker.kill()

    async def run(self, what: str, fn: Callable, args: tuple, budget_s: float, wait_s: float,
                  disconnected: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """`fn(*args)` in a worker process (fn: a module-level function). WorkTimeout when no worker is free
        within `wait_s` seconds or the call runs longer than `budget_s` (its worker is then killed), ClientGone
        when `disconnected()` turns true, WorkFailed when fn raised."""
        if self._idle is None:
            raise RuntimeError("ProcessWorkers.start() was not called")
        loop = asyncio.get_running_loop()
        try:
            worker = await asyncio.wait_for(self._idle.get(), wait_s)
        except asyncio.TimeoutError:
            raise WorkTimeout(f"{what} (waiting for a free worker)", wait_s) from None
        try:
            if worker is None or not worker.process.is_alive():
                worker = await asyncio.to_thread(_Worker, self._ctx)
            deadline = loop.time() + budget_s
            answered = loop.create_future()
            loop.add_reader(worker.conn.fileno(), lambda: answered.done() or answered.set_result(None))
            try:
                worker.conn.send((fn, args))
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise WorkTimeout(what, budget_s)
                    done, _ = await asyncio.wait({answered}, timeout=min(remaining, 0.25))
                    if done:
                        break
                    if disconnected is not None and await disconnected():
                        raise ClientGone("the client disconnected")
            finally:
                loop.remove_reader(worker.conn.fileno())
            ok, value = worker.conn.recv()
        except (WorkTimeout, ClientGone, asyncio.CancelledError):
            self._discard(worker)
            worker = None
            raise
        except (EOFError, OSError) as exc:  # the worker died (e.g. killed by the OS)
            self._discard(worker)
            worker = None
            raise WorkFailed(f"{what}: the worker process died ({type(exc).__name__})") from None
        finally:
            self._idle.put_nowait(worker)
        if not ok:
            raise WorkFailed(f"{what} failed: {value}")
        return value

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            self.killed += 1
            worker.kill()  # SIGKILL, then a short join
