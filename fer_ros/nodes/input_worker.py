"""Bounded hand-off between a subscription callback and a processing thread.

A slow stage must never let a queue grow: the callback only appends to a queue of at
most ``depth`` inputs, the worker takes the oldest waiting one when it is free, and an
input pushed out of a full queue is counted as dropped. ``depth=1`` is newest-wins, what
a live robot wants; a larger depth lets a bag replay be processed frame for frame.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from fer_ros.core.options import Param
from fer_ros.core.threads import name_os_thread

T = TypeVar("T")
# Every stage with an input topic declares this row.
INPUT_PARAMETERS = (
    Param(
        "input_queue_depth",
        1,
        "Inputs waiting while the stage is busy; a full queue drops (and counts) its oldest. "
        "1 is newest-wins, for live cameras; raise it to process every frame of a bag replay",
        minimum=1,
        maximum=1000,
    ),
    Param(
        "stall_timeout_s",
        3.0,
        "Diagnostics ERROR when inputs wait this long with none processed (a stalled stage)",
        minimum=0.1,
        maximum=3600.0,
    ),
)


class InputWorker(Generic[T]):
    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[Exception], None],
        name: str,
        depth: int = 1,
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._condition = threading.Condition()
        self._pending: deque[T] = deque()
        self.depth = depth
        self._running = False
        self._thread: threading.Thread | None = None
        self._busy = False
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self._last_progress = time.monotonic()

    @property
    def depth(self) -> int:
        return self._depth

    @depth.setter
    def depth(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"queue depth must be at least 1, not {depth}")
        self._depth = depth  # set before start(): a stopped worker holds no inputs

    def submit(self, item: T) -> None:
        with self._condition:
            self.received += 1
            if len(self._pending) >= self._depth:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(item)
            self._condition.notify()

    def start(self) -> None:
        with self._condition:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the item in progress; waits for it, so its resources stay valid.
        Inputs still waiting are discarded and counted as dropped."""
        with self._condition:
            self._running = False
            self.dropped += len(self._pending)
            self._pending.clear()
            self._condition.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _loop(self) -> None:
        name_os_thread(self._name)
        while True:
            with self._condition:
                while self._running and not self._pending:
                    self._condition.wait()
                if not self._running:
                    return
                item = self._pending.popleft()
                self._busy = True
            try:
                self._process(item)
            except Exception as error:  # one bad input must not stop the stage
                self._on_error(error)
            finally:
                with self._condition:
                    self.processed += 1
                    self._busy = False
                    self._last_progress = time.monotonic()

    def stalled_s(self) -> float:
        """How long work has waited (queued or in progress) without an input finishing;
        0 while the worker keeps up or has nothing to do."""
        with self._condition:
            if not self._pending and not self._busy:
                self._last_progress = time.monotonic()
                return 0.0
            return time.monotonic() - self._last_progress

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing in progress."""
        with self._condition:
            return not self._pending and not self._busy
