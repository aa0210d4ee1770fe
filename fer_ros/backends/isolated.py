"""Run a backend in a child process, behind the same interface.

A runtime that computes in Python (nengo-loihi's emulator) holds the interpreter lock
for its whole run, so in a process shared with other nodes it competes with their
threads and slows down several-fold. In a child process it has an interpreter to
itself; batches and results cross a pipe (a spike train is a few kB).

The child is started with ``spawn`` (forking a process that runs DDS threads is unsafe),
ignores Ctrl-C (the node decides when to close it) and exits when the pipe closes.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from fer_ros.backends.base import BackendSettings, InferenceResult, InputKind

START_TIMEOUT_S = 300.0  # building and compiling a network can take a while
CLOSE_TIMEOUT_S = 10.0


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


def _serve(name: str, settings: BackendSettings, conn: Connection) -> None:
    """The child: build the backend, then answer ``infer`` until ``close`` or EOF."""
    from fer_ros.backends import create_backend

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        backend = create_backend(name, settings)
    except Exception as error:
        _send_error(conn, error)
        return
    conn.send(
        (
            "ok",
            {
                "input_kind": backend.input_kind,
                "runtime": backend.runtime,
                "device": backend.device,
                "fallback": backend.fallback,
            },
        )
    )
    try:
        while True:
            try:
                command, batch = conn.recv()
            except EOFError:
                return  # the node's process is gone
            if command == "close":
                return
            try:
                conn.send(("ok", backend.infer(batch)))
            except Exception as error:  # bad input: the node reports it and goes on
                _send_error(conn, error)
    finally:
        backend.close()


def _send_error(conn: Connection, error: Exception) -> None:
    try:
        conn.send(("error", error))
    except Exception:  # an exception that cannot be pickled still gets its message across
        conn.send(("error", RuntimeError(f"{type(error).__name__}: {error}")))
