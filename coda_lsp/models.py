"""The model coda-lsp uses: one owner for loading it and for the thread that runs it.

A load runs in a background thread, one at a time; the model in use is
swapped whole under a lock when a load succeeds, and a failed load keeps it.
Every model call runs on one worker thread, in order. A request asks for
`current()` once and keeps that sampler to its end, so a load finishing
meanwhile never changes the model under it.

Editors send the same settings twice at start (initializationOptions, then
didChangeConfiguration while the first load runs): a request for the model
already loaded or loading starts nothing. Settings may change while a load
runs; the loader then loads again, so the model in use is always the last
one asked for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from coda_core.errors import CodaError, DeviceError

from .settings import Settings

# on_status(state, model, message, percentage=None): "loading" when a load starts (and, while a hub
# model downloads, with its percentage); "ready" or "error" when it ends
StatusCallback = Callable[..., None]


class ModelHost:
    """`on_status` hears every load start and end, `on_error` every failed load's message
    (the server sends them to the editor); both are called from the loading thread."""

    def __init__(self, settings: Settings, on_status: StatusCallback | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.settings = settings
        self.on_status = on_status or (lambda state, model, message, percentage=None: None)
        self.on_error = on_error or (lambda message: None)
        self._sampler = None
        self._name: str | None = None  # the model in use, or being loaded while none is
        self._lock = threading.Lock()  # guards the two above
        self._wanted: tuple | None = None  # (model, device, dtype, quantize) asked for last
        self._in_use: tuple | None = None  # ... of the model in use
        self._loading = threading.Lock()  # held by the one thread that loads models
        self._load_wanted = threading.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="coda-model")

    @staticmethod
    def key(settings: Settings) -> tuple:
        """What a load depends on: a settings change that keeps it keeps the loaded model."""
        return settings.model, settings.device, settings.dtype, settings.quantize

    def current(self):
        """The sampler in use (None before the first successful load)."""
        with self._lock:
            return self._sampler

    @property
    def name(self) -> str | None:
        with self._lock:
            return self._name

    @property
    def computing(self) -> str | None:
        """How the model in use computes here, as the loader chose by measuring (e.g. "computing in
        int8 (fbgemm) 2.4x fp32"), or None before a model is loaded."""
        sampler = self.current()
        plan = getattr(sampler.model, "kernel_plan", None) if sampler is not None else None
        return f"computing in {plan.describe()}" if plan is not None else None

    # -- loading -------------------------------------------------------------

    def request(self) -> None:
        """Load the configured model in the background, unless it is the one loaded or loading."""
        wanted = self.key(self.settings)
        with self._lock:  # a failed load sets _wanted back from the loading thread
            if wanted == self._wanted:
                return
            self._wanted = wanted
        self._load_wanted.set()
        if self._loading.acquire(blocking=False):
            threading.Thread(target=self._loader, name="coda-load", daemon=True).start()

    def _loader(self) -> None:
        while True:
            try:
                while self._load_wanted.is_set():
                    self._load_wanted.clear()
                    self._load_and_report()
            finally:
                self._loading.release()
            # A request that came after the check above, while the lock was still held, left it to us.
            if not self._load_wanted.is_set() or not self._loading.acquire(blocking=False):
                return

    def _load_and_report(self) -> None:
        model = self.settings.model
        self.on_status("loading", model, None)
        try:
            error = self.load()
        except Exception as exc:  # a loader thread that dies would leave "loading" on screen for good
            logging.getLogger(__name__).exception("model load failed")
            error = f"coda-lsp could not load the model {model}: {exc}"
        if error:
            self.on_error(error)
        if self.current() is None:
            self.on_status("error", model, error)
        else:  # loaded, or the new model failed and the one in use stays; else say how it computes
            self.on_status("ready", self.name, error or self.computing)

    def load(self) -> str | None:
        """Load the configured model now and put it in use; returns an error message instead of raising.

        A failed load keeps the model in use, if there is one: the user loses nothing.
        """
        from coda_core.sampler import Sampler

        s = self.settings
        tried = self.key(s)
        model = s.model
        with self._lock:
            if self._sampler is None:
                self._name = model
        try:
            sampler = Sampler.load(model, device=s.device, dtype=s.dtype, quantize=s.quantize,
                                   on_progress=self._download_progress(model))
            sampler.newline_ids  # a line completion's stop needs them: worked out here, not on the first keystroke
        except (CodaError, ValueError, OSError, RuntimeError, TypeError) as exc:
            # a device that is not here: name the setting to change
            reason = f"{exc} (the device setting is {s.device!r})" if isinstance(exc, DeviceError) else exc
            error = f"coda-lsp could not load the model {model}: {reason}"
            with self._lock:
                if self._sampler is not None:
                    error += f" (still using {self._name})"
                    # The settings name the model in use again (unless newer ones arrived meanwhile), so
                    # that clearing the setting ("keep the model in use") or changing another one
                    # does not retry the model that failed.
                    if self.key(s) == tried:
                        s.model, s.device, s.dtype, s.quantize = self._in_use
                        self._wanted = self._in_use
                return error
        with self._lock:
            self._sampler, self._name, self._in_use = sampler, model, tried
        return None

    def _download_progress(self, model: str):
        """A callback for a hub model's download: a "loading" status each time its percentage grows,
        and a plain "loading" one when it is whole (the weights are read next).

        It is called from the download's worker threads, and sends in the order it decides. Where
        the hub does not say the snapshot's size, the total grows as each file starts, so the
        percentage shown never goes back: it waits for the bytes to catch up instead.
        """
        shown = [-1]
        lock = threading.Lock()

        def progress(done: int, total: int) -> None:
            percentage = min(100, done * 100 // total) if total else 0
            with lock:
                if percentage <= shown[0]:
                    return
                shown[0] = percentage
                if percentage == 100:
                    self.on_status("loading", model, f"downloaded {model}; reading its weights")
                else:
                    self.on_status("loading", model, f"downloading {model} into the Hugging Face cache (once): "
                                   f"{done / 1e9:.2f} of {total / 1e9:.2f} GB", percentage)

        return progress

    # -- running -------------------------------------------------------------

    async def run(self, work: Callable, *args):
        """`work(*args)` on the model thread; a model call never runs beside another."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, work, *args)

    def shutdown(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
