"""Dynamic batching: concurrent requests queue, are collected for a few ms, and share one generate call.

A single background task owns the queue. It waits for the first item, keeps collecting until `max_batch`
items or `max_wait_ms` have passed, groups them by key (items with equal generation settings), and runs
one handler call per group in a worker thread, so the event loop never blocks on the model. While the
worker runs, new requests pile up in the queue and form the next batch.

Admission counts work, not requests: each item carries a cost (prompts x candidates x new tokens), and a
request whose cost does not fit in what is left of `max_queued_cost` is refused whole (QueueFull) before
any of it is queued. Requests are isolated: when a shared call fails, each of its items is run again on
its own, so one bad input fails only its own request and no error text reaches another client. A request
that times out or whose client goes away is cancelled: its items leave the queue, and a running call whose
items are all cancelled stops at its next decoding step (`naturelm.generate.cancel`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from naturelm.generate.cancel import Cancelled, cancel_when

log = logging.getLogger("naturelm.serve")


class QueueFull(Exception):
    """The server holds as much queued work as it allows (`max_queue` items or `max_queued_cost`)."""


class GenerationTimeout(Exception):
    """A request waited longer than the per-request timeout."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready; its work was cancelled."""


@dataclass
class _Item:
    key: Hashable
    payload: Any
    future: asyncio.Future
    cost: int = 1
    enqueued: float = field(default_factory=time.perf_counter)
    released: bool = False

    def abandoned(self) -> bool:
        """Nobody waits for this item's result any more (read from the worker thread too)."""
        return self.future.done()


@dataclass
class BatchStats:
    """Counters exposed on /health: handler calls, items, per-item retries, cancellations, queued work."""

    batches: int = 0
    items: int = 0
    max_batch_seen: int = 0
    retried: int = 0
    cancelled: int = 0
    refused: int = 0
    queued_cost: int = 0

    def as_dict(self) -> dict:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "mean_batch": round(mean, 2),
                "max_batch": self.max_batch_seen, "retried_alone": self.retried, "cancelled": self.cancelled,
                "refused": self.refused, "queued_cost": self.queued_cost}


class Batcher:
    """Collect items for up to `max_wait_ms`, then call `handler(key, payloads) -> results` once per key.

    A result that is an Exception is raised to its own request only. When the handler raises for a group of
    several items, each item is run again alone, so the exception reaches only the requests that cause it.
    """

    def __init__(self, handler: Callable[[Hashable, list], list], max_batch: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, timeout_s: float = 120.0, max_queued_cost: int | None = None):
        self.handler, self.max_batch, self.max_wait = handler, max_batch, max_wait_ms / 1000
        self.max_queue, self.timeout_s, self.max_queued_cost = max_queue, timeout_s, max_queued_cost
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="naturelm-generate")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, key: Hashable, payload: Any, cost: int = 1,
                     disconnected: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """Queue one item and wait for its result (raises what the handler raised, QueueFull, GenerationTimeout
        or ClientGone)."""
        return (await self.submit_many(key, [payload], cost, disconnected))[0]

    async def submit_many(self, key: Hashable, payloads: list, cost_each: int = 1,
                          disconnected: Callable[[], Awaitable[bool]] | None = None) -> list:
        """Queue the items of one request (e.g. a list of prompts), all or none, and wait for all results.

        `cost_each`: the work of one item (candidates x new tokens); `disconnected`: polled while waiting
        (Starlette's `request.is_disconnected`), to cancel the work of clients that went away."""
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        cost = cost_each * len(payloads)
        if self._queue.qsize() + len(payloads) > self.max_queue:
            self.stats.refused += 1
            raise QueueFull(f"{self._queue.qsize()} items are waiting and this request adds {len(payloads)} "
                            f"(limit {self.max_queue}); retry later")
        if self.max_queued_cost is not None and self.stats.queued_cost + cost > self.max_queued_cost:
            self.stats.refused += 1
            raise QueueFull(f"the server holds {self.stats.queued_cost} units of queued work (candidates x tokens) "
                            f"and this request adds {cost} (limit {self.max_queued_cost}); retry later")
        loop = asyncio.get_running_loop()
        items = [_Item(key, p, loop.create_future(), cost_each) for p in payloads]
        self.stats.queued_cost += cost
        for it in items:
            self._queue.put_nowait(it)
        waiting = asyncio.gather(*(it.future for it in items))
        deadline = loop.time() + self.timeout_s
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise GenerationTimeout(f"generation did not finish within {self.timeout_s:g} s")
                done, _ = await asyncio.wait({waiting}, timeout=min(remaining, 0.25) if disconnected else remaining)
                if done:
                    return waiting.result()
                if disconnected is not None and await disconnected():
                    raise ClientGone("the client disconnected")
        finally:
            cancelled = [it for it in items if not it.future.done()]
            for it in cancelled:  # the worker drops them from the queue or stops their running call
                it.future.cancel()
            self.stats.cancelled += len(cancelled)
            if not waiting.done():
                waiting.cancel()
            elif not waiting.cancelled():
                waiting.exception()  # retrieved, so asyncio does not log it as never retrieved

    def _release(self, items: list[_Item]) -> None:
        for it in items:
            if not it.released:
                it.released = True
                self.stats.queued_cost -= it.cost

    async def _collect(self) -> list[_Item]:
        items = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_wait
        while len(items) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                items.append(self._queue.get_nowait() if remaining <= 0 else
                             await asyncio.wait_for(self._queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        self._release([it for it in items if it.abandoned()])
        return [it for it in items if not it.abandoned()]

    def _call(self, key: Hashable, group: list[_Item]) -> list:
        """Worker thread: the handler on a group, stopped at its next step once every item is abandoned."""
        with cancel_when(lambda: all(it.abandoned() for it in group)):
            results = self.handler(key, [it.payload for it in group])
        if not isinstance(results, list) or len(results) != len(group):
            raise RuntimeError(f"handler returned {type(results).__name__} of the wrong length for {len(group)} items")
        return results

    async def _run_group(self, loop, key: Hashable, group: list[_Item]) -> None:
        try:
            results = await loop.run_in_executor(self._executor, self._call, key, group)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - isolated below
            if len(group) == 1:
                if not group[0].future.done():
                    group[0].future.set_exception(exc)
                return
            # a shared call failed: each item alone, so only the requests at fault get an error (their own)
            self.stats.retried += len(group)
            for it in group:
                if not it.abandoned():
                    await self._run_group(loop, key, [it])
            return
        for it, res in zip(group, results):
            if it.future.done():
                continue
            if isinstance(res, Exception):  # a per-item failure the handler chose to report
                it.future.set_exception(res)
            else:
                it.future.set_result(res)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            groups: dict[Hashable, list[_Item]] = {}
            for it in items:
                groups.setdefault(it.key, []).append(it)
            for key, group in groups.items():
                group = [it for it in group if not it.abandoned()]  # cancelled while earlier groups ran
                if not group:
                    continue
                self.stats.batches += 1
                self.stats.items += len(group)
                self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(group))
                try:
                    await self._run_group(loop, key, group)
                except Exception:  # noqa: BLE001 - the loop must survive anything
                    log.exception("batch worker failed on key %r", key)
                    for it in group:
                        if not it.future.done():
                            it.future.set_exception(RuntimeError("batch worker failure"))
                finally:
                    self._release(group)
            self._release(items)
