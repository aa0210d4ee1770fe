"""Newest-wins hand-off between a subscription callback and a processing thread.

A slow stage must never let a queue grow: the callback only stores the newest input,
the worker processes whatever is newest when it is free, and every input that was
replaced before it was processed is counted as dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestWorker(Generic[T]):
    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[Exception], None],
        name: str,
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._condition = threading.Condition()
        self._pending: T | None = None
        self._running = False
        self._thread: threading.Thread | None = None
        self._busy = False
        self.received = 0
        self.processed = 0
        self.dropped = 0

    def submit(self, item: T) -> None:
        with self._condition:
            self.received += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = item
            self._condition.notify()

    def start(self) -> None:
        with self._condition:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the item in progress; waits for it, so its resources stay valid."""
        with self._condition:
            self._running = False
            self._pending = None
            self._condition.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._running and self._pending is None:
                    self._condition.wait()
                if not self._running:
                    return
                item, self._pending = self._pending, None
                self._busy = True
            try:
                self._process(item)  # type: ignore[arg-type]
            except Exception as error:  # one bad input must not stop the stage
                self._on_error(error)
            finally:
                with self._condition:
                    self.processed += 1
                    self._busy = False

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing in progress."""
        with self._condition:
            return self._pending is None and not self._busy
