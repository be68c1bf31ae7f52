"""The next steps' batches, made on a background thread while the device trains this one.

Reading and masking a batch is CPU work: about 33 ms for 128 rows of 512
tokens, as long as a whole mini-l step on an H200. Done in line, the device
idles while the host masks. Here a worker thread reads and masks steps k+1
and k+2 while step k trains, so a step takes its batch from a queue. Torch's
CPU kernels release the GIL, so the worker runs beside the main thread's
kernel launches. On a CUDA device the worker also pins the batch's memory,
so the main thread's copy to the GPU is asynchronous.

A prepared step carries the reader's position after its rows: a checkpoint
records what the trainer has consumed, never what the worker read ahead.
Everything a step's batch depends on is a function of its step number (the
masking draws come from (seed, reader, step)), so batches are the same
whether they were made ahead or in line.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Prepared:
    step: int
    micro: list[Any]  # one batch per micro-step (grad_accum): masked batches, or rows for the causal objective
    reader_state: dict  # the reader's position after these rows
    epoch: float  # epochs read, after these rows
    seconds: float  # the worker's time to read and mask them


@dataclass
class _Failed:
    error: BaseException


class Prefetcher:
    """Runs `make(step)` for step = first, first + 1, ... on a worker thread, `depth` steps ahead
    (depth 0: no thread, `get` makes the batch in line, as a benchmark's baseline)."""

    def __init__(self, make: Callable[[int], Prepared], first: int, depth: int = 2):
        self.wait_seconds = 0.0  # how long the last get() waited: the step waiting for its batch
        self._make = make
        self._thread = None
        if depth == 0:
            return
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(make, first), daemon=True,
                                        name="coda-train-batches")
        self._thread.start()

    def _work(self, make: Callable[[int], Prepared], step: int) -> None:
        while not self._stop.is_set():
            try:
                item = make(step)
            except BaseException as exc:  # handed to the main thread, which raises it
                self._queue.put(_Failed(exc))
                return
            self._queue.put(item)
            step += 1

    def get(self, step: int) -> Prepared:
        start = time.perf_counter()
        item = self._queue.get() if self._thread is not None else self._make(step)
        self.wait_seconds = time.perf_counter() - start
        if isinstance(item, _Failed):
            self.close()
            raise item.error
        if item.step != step:
            raise RuntimeError(f"the batch worker made step {item.step}'s batch, but step {step} asked for it")
        return item

    def close(self) -> None:
        """Stop the worker. Emptying the queue frees a put it may be blocked in; it then sees the stop."""
        if self._thread is None:
            return
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
