"""Dynamic batching: concurrent requests queue, are collected for a few ms, and share one generate call.

A single background task owns the queue. It waits for the first item, keeps collecting until `max_batch`
items or `max_wait_ms` have passed, groups them by key (items with equal generation settings), and runs
one handler call per group in a worker thread, so the event loop never blocks on the model. While the
worker runs, new requests pile up in the queue and form the next batch.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The server holds more waiting requests than it allows (`max_queue`)."""


class GenerationTimeout(Exception):
    """A request waited longer than the per-request timeout."""


@dataclass
class _Item:
    key: Hashable
    payload: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters exposed on /health: how many handler calls and how many items they carried."""

    batches: int = 0
    items: int = 0
    max_batch_seen: int = 0

    def as_dict(self) -> dict:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "mean_batch": round(mean, 2),
                "max_batch": self.max_batch_seen}


class Batcher:
    """Collect items for up to `max_wait_ms`, then call `handler(key, payloads) -> results` once per key.

    A result that is an Exception is raised to its own request only; an exception from the handler goes to all.
    """

    def __init__(self, handler: Callable[[Hashable, list], list], max_batch: int = 32, max_wait_ms: float = 5.0,
                 max_queue: int = 1024, timeout_s: float = 120.0):
        self.handler, self.max_batch, self.max_wait = handler, max_batch, max_wait_ms / 1000
        self.max_queue, self.timeout_s = max_queue, timeout_s
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

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """Queue one item and wait for its result (raises what the handler raised, or GenerationTimeout)."""
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting (limit {self.max_queue}); retry later")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(key, payload, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # the batch still finishes; its result for this item is dropped
            raise GenerationTimeout(f"generation did not finish within {self.timeout_s:g} s") from None

    async def submit_many(self, key: Hashable, payloads: list) -> list:
        """Queue several items (e.g. a list of prompts) that may land in one batch."""
        return list(await asyncio.gather(*(self.submit(key, p) for p in payloads)))

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
        return [it for it in items if not it.future.cancelled()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            groups: dict[Hashable, list[_Item]] = {}
            for it in items:
                groups.setdefault(it.key, []).append(it)
            for key, group in groups.items():
                self.stats.batches += 1
                self.stats.items += len(group)
                self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(group))
                try:
                    results = await loop.run_in_executor(self._executor, self.handler, key,
                                                         [it.payload for it in group])
                    if len(results) != len(group):
                        raise RuntimeError(f"handler returned {len(results)} results for {len(group)} items")
                except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                    for it in group:
                        if not it.future.done():
                            it.future.set_exception(exc)
                    continue
                for it, res in zip(group, results):
                    if it.future.done():
                        continue
                    if isinstance(res, Exception):  # a per-item failure the handler chose to report
                        it.future.set_exception(res)
                    else:
                        it.future.set_result(res)
