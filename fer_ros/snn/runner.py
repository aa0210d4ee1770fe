"""Run a built SNN one face at a time on nengo-loihi (emulator or Loihi hardware).

The simulator is built once; each face is one ``run_steps(timesteps)`` with its spike
train preset in the input buffer, followed by a state reset so that faces do not leak
into each other. nengo-loihi 1.1 does not implement ``Simulator.reset()``, so:

* ``reset="state"`` (emulator only, default there): zero the emulator's compartment
  state (current, voltage, refractory counters) and drop input spikes still queued for
  the next step. Exact, and costs nothing.
* ``reset="settle"`` (the only choice on hardware): run ``settle_steps`` with no input
  and discard them. Voltages between 0 and threshold survive (Loihi has no leak for these
  IF neurons), so this is only approximately a reset; and because negative membranes
  would survive too, settling networks are built with nengo's clamped
  ``SpikingRectifiedLinear`` instead of :mod:`.neurons`' integrating neuron.

On the emulator, faces run on one of :mod:`fer_ros.snn.emulator`'s paths (``emulator`` and
``fast`` below); on hardware, through NxSDK. This module only chooses and resets.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.core.spike_encoding import ConvertedTiming
from fer_ros.snn.builder import build_network
from fer_ros.snn.emulator.delivery import accelerate
from fer_ros.snn.emulator.layered import LayeredEmulator
from fer_ros.snn.emulator.mirror import supports
from fer_ros.snn.emulator.presentation import Presentation
from fer_ros.snn.emulator.synapses import ensemble_blocks
from fer_ros.snn.emulator.tables import load as load_tables
from fer_ros.snn.emulator.tables import save as save_tables
from fer_ros.snn.params import SnnParams

log = logging.getLogger(__name__)

TARGETS = ("auto", "sim", "loihi")
RESETS = ("auto", "state", "settle")
EMULATORS = ("fast", "nengo")


def has_nxsdk() -> bool:
    """True when Intel's NxSDK (Loihi hardware access) is importable."""
    try:
        from nengo_loihi.hardware.nxsdk_shim import HAS_NXSDK
    except ImportError:
        return False
    return bool(HAS_NXSDK)


def resolve_target(target: str) -> str:
    """``auto`` -> ``loihi`` when NxSDK is importable, else ``sim`` (the emulator)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; use one of {TARGETS}")
    if target != "auto":
        return target
    chosen = "loihi" if has_nxsdk() else "sim"
    log.info("target auto -> %s (NxSDK %s)", chosen, "found" if chosen == "loihi" else "absent")
    return chosen


class SnnRunner:
    """A nengo-loihi simulator for one converted network, reused for every face.

    Parameters
    ----------
    params : SnnParams
        The converted network.
    target : {"auto", "sim", "loihi"}
        ``sim`` is nengo-loihi's bit-level emulator; ``loihi`` needs NxSDK.
    input_rate : float, optional
        Max rate of the spike encoder feeding the network; None or 0: as converted.
    reset : {"auto", "state", "settle"}
        How state is cleared between faces (see the module docstring); ``auto`` is
        ``state`` on the emulator and ``settle`` on hardware.
    settle_steps : int
        Input-free steps after each face when ``reset="settle"``.
    emulator : {"fast", "nengo"}
        Emulator only: ``fast`` computes a batch of faces layer by layer (the layered
        emulator, :mod:`.emulator.layered`, bit-identical; with ``reset="state"``), falling
        back to stepping nengo-loihi (logged once, with the reason) for networks it cannot
        mirror; ``nengo`` always steps nengo-loihi's emulator.
    fast : bool
        Whenever nengo-loihi's emulator is stepped: vectorised spike delivery
        (:mod:`.emulator.delivery`, bit-identical); False runs it exactly as shipped.
    tables : Path, optional
        Where the layered emulator's tables are kept (:mod:`.emulator.tables`, a file
        named by :func:`~.emulator.tables.table_key`): read instead of building the
        nengo-loihi model when present, written after a build. No model is built then
        (``sim`` and ``net`` are None).
    """

    def __init__(
        self,
        params: SnnParams,
        target: str = "auto",
        input_rate: float | None = None,
        reset: str = "auto",
        settle_steps: int = 10,
        fast: bool = True,
        emulator: str = "fast",
        tables: Path | None = None,
    ) -> None:
        import nengo_loihi  # ImportError is mapped to BackendUnavailable by the backend

        if emulator not in EMULATORS:
            raise ValueError(f"unknown emulator {emulator!r}; use one of {EMULATORS}")
        self.params = params
        self.target = resolve_target(target)
        if reset not in RESETS:
            raise ValueError(f"unknown reset {reset!r}; use one of {RESETS}")
        if reset == "auto":
            reset = "state" if self.target == "sim" else "settle"
        if reset == "state" and self.target != "sim":
            raise ValueError("reset='state' edits emulator state; on hardware use 'settle'")
        self.reset_mode = reset
        self.settle_steps = int(settle_steps)
        timing = ConvertedTiming.of_params(params).resolve(input_rate=input_rate)
        self.input_rate = timing.input_rate  # None (or 0): the rate it was converted for
        self.emulator = "fast"
        self.fast = False
        self.layered: LayeredEmulator | None = None  # when emulator="fast" can mirror it
        self.sim: Any = None
        self.net: Any = None
        cached = emulator == "fast" and self.target == "sim" and reset == "state"
        if cached and tables is not None and tables.is_file():
            try:
                self.layered = LayeredEmulator.from_tables(*load_tables(tables))
                log.info("layered emulator tables read from %s (no model built)", tables)
                self.layered.warm_up()
                return
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot read %s (%s): building the model again", tables, exc)
        self.net = build_network(params, input_rate=self.input_rate, integrating=reset == "state")
        with warnings.catch_warnings():
            # nengo-loihi warns about nengo 4 and about discretisation details it handles
            warnings.simplefilter("ignore")
            self.sim = nengo_loihi.Simulator(
                self.net.network, dt=params.dt, precompute=True, target=self.target
            )
        self._output_start: np.ndarray | float = 0.0  # nonzero only after settling
        self.fast = bool(fast and self.target == "sim" and accelerate(self.sim.sims["emulator"]))
        if emulator == "fast" and self.target == "sim":
            self.layered = self._layered_emulator()
        self.emulator = "fast" if self.layered is not None else "nengo"  # what runs faces
        if self.layered is not None:
            self.layered.warm_up()
        if self.layered is not None and cached and tables is not None:
            try:
                save_tables(tables, self.layered)
            except OSError as exc:  # a read-only home: configure stays slow, nothing breaks
                log.warning("cannot keep the emulator tables in %s (%s)", tables, exc)
        self._vth = np.concatenate(
            [b.compartment.vth for b in ensemble_blocks(self.sim, self.net.ensembles[-1])]
        ).astype(np.float64)
        self._layer_scale = params.dt / params.amplitude

    @property
    def runtime(self) -> str:
        import nengo_loihi

        return f"nengo-loihi {nengo_loihi.__version__}"

    def _layered_emulator(self) -> LayeredEmulator | None:
        reason = (
            supports(self.sim, self.net)
            if self.reset_mode == "state"
            else f"reset={self.reset_mode!r} carries state from face to face"
        )
        if reason is None:
            try:
                return LayeredEmulator(self.sim, self.net)
            except ValueError as exc:
                reason = str(exc)
        log.warning("fast emulator not used (%s): stepping nengo-loihi's emulator", reason)
        return None

    def run_batch(self, spikes: np.ndarray) -> list[Presentation]:
        """Present several faces: bool spikes (faces, timesteps, H, W) or (faces, T, C, H, W)."""
        if self.layered is not None:
            return self.layered.run_batch(spikes)
        return [self.run(face) for face in spikes]

    def run(self, spikes: np.ndarray) -> Presentation:
        """Present one face: bool spikes (timesteps, H, W) or (timesteps, C, H, W)."""
        if self.layered is not None:
            return self.run_batch(spikes[None])[0]
        steps = int(spikes.shape[0])
        self.net.buffer.set(spikes)
        self.sim.run_steps(steps)
        data = self.sim.data
        layer_counts = tuple(
            np.rint(data[p].sum(axis=0) * self._layer_scale).astype(np.int64)
            for p in self.net.spike_probes
        )
        voltage = np.asarray(data[self.net.output_voltage_probe], np.float64) / self._vth
        result = Presentation(
            output_spikes=np.asarray(data[self.net.spike_probes[-1]]) > 0,
            output_voltage=voltage,
            input_counts=spikes.reshape(steps, -1).sum(axis=0).astype(np.int64),
            layer_counts=layer_counts,
            timesteps=steps,
            output_start=self._output_start,
        )
        self.sim.clear_probes()  # the node runs for hours: do not let probe data grow
        self._output_start = voltage[-1]  # used only when state is not zeroed
        self._reset()
        return result

    def _reset(self) -> None:
        if self.reset_mode == "settle":
            if self.settle_steps == 0:
                return
            self.net.buffer.set(np.zeros((self.settle_steps, self.net.buffer.n_inputs), bool))
            self.sim.run_steps(self.settle_steps)
            # the integrating output keeps its charge: the next face is read relative to it
            last = np.asarray(self.sim.data[self.net.output_voltage_probe][-1], np.float64)
            self._output_start = last / self._vth
            self.sim.clear_probes()
            return
        emulator = self.sim.sims["emulator"]
        comp = emulator.compartment
        for array in (comp.input, comp.current, comp.voltage, comp.ref_count):
            array[...] = 0
        self._output_start = 0.0
        comp.spiked[...] = False
        for spike_input in emulator.inputs:
            # spikes of the last step would arrive at the first step of the next face
            for t in [t for t in spike_input.spikes if t not in spike_input.permanent]:
                del spike_input.spikes[t]

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()
