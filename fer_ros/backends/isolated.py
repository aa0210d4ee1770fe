"""Run a backend in a child process, behind the same interface.

A runtime that computes in Python (nengo-loihi's emulator) holds the interpreter lock
for its whole run, so in a process shared with other nodes it competes with their
threads and slows down several-fold. In a child process it has an interpreter to
itself; batches and results cross a pipe (a spike train is a few kB).

The child is started with ``spawn`` (forking a process that runs DDS threads is unsafe),
ignores Ctrl-C (the node decides when to close it) and exits when the pipe closes. When
the node's process dies (``kill -9``) the child ends quietly, exit code 0: a broken pipe
on its answer, an end of file on the next request, or, should a call into the runtime
hang, a watcher that sees the parent gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

from fer_ros.backends.base import BackendSettings, InferenceResult, InputKind

START_TIMEOUT_S = 300.0  # building and compiling a network can take a while
CLOSE_TIMEOUT_S = 10.0
PARENT_POLL_S = 0.5  # how often the child checks that the node's process is alive


class BackendProcessError(RuntimeError):
    """The backend's process exited or stopped answering."""


class IsolatedBackend:
    """The backend ``name`` built from ``settings`` in its own process."""

    def __init__(self, name: str, settings: BackendSettings) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(name, settings, child_end), name=f"{name} backend", daemon=True
        )
        self._process.start()
        child_end.close()
        info = self._answer("start", timeout_s=START_TIMEOUT_S)
        self.name: str = name
        self.input_kind: InputKind = info["input_kind"]
        self.runtime: str = info["runtime"]
        self.device: str = info["device"]
        self.fallback: bool = info["fallback"]

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def infer(self, batch: np.ndarray) -> InferenceResult:
        try:
            self._conn.send(("infer", batch))
        except OSError as error:
            raise self._exited("infer") from error
        return self._answer("infer")

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(("close", None))
            except OSError:
                pass  # the child is already gone
            self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _answer(self, what: str, timeout_s: float | None = None) -> Any:
        """The child's answer; its exception is re-raised here, with its own type."""
        try:
            if timeout_s is not None and not self._conn.poll(timeout_s):
                self._process.kill()
                raise BackendProcessError(f"backend process did not {what} in {timeout_s:.0f} s")
            status, value = self._conn.recv()
        except (EOFError, OSError) as error:
            raise self._exited(what) from error
        if status == "error":
            raise value
        return value

    def _exited(self, what: str) -> BackendProcessError:
        self._process.join(1.0)  # so that the exit code is known
        return BackendProcessError(
            f"backend process exited (code {self._process.exitcode}) during {what}"
        )


class _ParentGone(Exception):
    """The node's end of the pipe is closed: its process is gone."""


def _serve(name: str, settings: BackendSettings, conn: Connection) -> None:
    """The child's main: answer the node until ``close``, or quietly until it is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(os.getppid())
    try:
        _answer_requests(name, settings, conn)
    except _ParentGone:
        pass  # nobody to answer or to tell: end without a word


def _answer_requests(name: str, settings: BackendSettings, conn: Connection) -> None:
    """Build the backend, then answer ``infer`` until ``close`` or EOF."""
    from fer_ros.backends import create_backend

    try:
        backend = create_backend(name, settings)
    except Exception as error:
        _send(conn, "error", error)
        return
    try:
        info = {
            "input_kind": backend.input_kind,
            "runtime": backend.runtime,
            "device": backend.device,
            "fallback": backend.fallback,
        }
        _send(conn, "ok", info)
        while True:
            try:
                command, batch = conn.recv()
            except (EOFError, OSError):
                return  # the node's process is gone
            if command == "close":
                return
            try:
                result = backend.infer(batch)
            except Exception as error:  # bad input: the node reports it and goes on
                _send(conn, "error", error)
            else:
                _send(conn, "ok", result)
    finally:
        backend.close()


def _send(conn: Connection, status: str, value: Any) -> None:
    """Answer the node; raises _ParentGone when its process has died (a broken pipe)."""
    try:
        payload = ForkingPickler.dumps((status, value))  # as Connection.send pickles
    except Exception:  # an exception that cannot be pickled still gets its message across
        error = RuntimeError(f"{type(value).__name__}: {value}")
        payload = ForkingPickler.dumps((status, error))
    try:
        conn.send_bytes(payload)
    except OSError as error:
        raise _ParentGone() from error


def _watch_parent(parent: int) -> None:
    """End this process, exit code 0, once its parent has gone and the main loop has had
    CLOSE_TIMEOUT_S to end by itself: only a call into the runtime that hangs is cut."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        time.sleep(CLOSE_TIMEOUT_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent watcher", daemon=True).start()


class BackendDown(RuntimeError):
    """The backend's process is down and being restarted; the input is dropped."""


class RespawningBackend:
    """An :class:`IsolatedBackend` that is restarted when its process dies.

    A death during ``infer`` raises :class:`BackendDown` for that input and every input
    until a restart succeeds; restarts run on a thread with exponential back-off
    (``first_delay_s`` doubling up to ``max_delay_s``). After ``max_failures`` failed
    starts in a row it gives up: ``failed`` holds the last cause. The first start happens
    in the constructor, so a backend that cannot load at all fails configure as before.
    """

    def __init__(
        self,
        name: str,
        settings: BackendSettings,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        max_failures: int = 5,
    ) -> None:
        self._name, self._settings = name, settings
        self._first_delay_s, self._max_delay_s = first_delay_s, max_delay_s
        self._max_failures = max_failures
        self._lock = threading.Lock()
        self._backend: IsolatedBackend | None = IsolatedBackend(name, settings)
        self._restarter: threading.Thread | None = None
        self._closed = False
        self.restarts = 0
        self.down_cause = ""  # why it is down now ("" when up)
        self.failed = ""  # set when restarting gave up
        b = self._backend
        self.name, self.input_kind, self.runtime = name, b.input_kind, b.runtime
        self.device, self.fallback = b.device, b.fallback

    @property
    def pid(self) -> int | None:
        backend = self._backend
        return backend.pid if backend else None

    def infer(self, batch: np.ndarray) -> InferenceResult:
        with self._lock:
            backend = self._backend
        if backend is None:
            raise BackendDown(self.failed or f"backend process down ({self.down_cause})")
        try:
            return backend.infer(batch)
        except BackendProcessError as error:
            self._went_down(backend, str(error))
            raise BackendDown(str(error)) from error

    def _went_down(self, backend: IsolatedBackend, cause: str) -> None:
        with self._lock:
            if self._backend is not backend or self._closed:
                return
            self._backend = None
            self.down_cause = cause
            self._restarter = threading.Thread(
                target=self._restart, name=f"{self._name} backend restart", daemon=True
            )
            self._restarter.start()
        backend.close()

    def _restart(self) -> None:
        delay = self._first_delay_s
        for _ in range(self._max_failures):
            time.sleep(delay)
            if self._closed:
                return
            try:
                backend = IsolatedBackend(self._name, self._settings)
            except Exception as error:  # the same BackendUnavailable a configure would see
                self.down_cause = f"restart failed: {error}"
                delay = min(delay * 2, self._max_delay_s)
                continue
            with self._lock:
                if self._closed:
                    backend.close()
                    return
                self._backend = backend
                self.restarts += 1
                self.down_cause = ""
            return
        self.failed = (
            f"backend process failed to restart {self._max_failures} times: {self.down_cause}"
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
