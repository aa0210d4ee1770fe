"""Intel Loihi backend: the converted SNN on nengo-loihi (bit-level emulator or hardware).

The network is built and compiled once when the backend loads (on the emulator, its
tables are kept on disk and read back at later loads: :mod:`fer_ros.snn.emulator.tables`,
``FER_ROS_CACHE``); every face is then one
presentation of ``timesteps`` steps of its (off-chip encoded) spike train, with the
network state reset in between (see :mod:`fer_ros.snn.runner`).

Scores are the output layer's integrated activity, normalised to sum to 1: per class,
output spikes plus the change of membrane voltage over the face, in thresholds, floored
at 0. The converted output neurons are integrators that do not spike within a face, so
this is the integral of the logit drive (see :mod:`fer_ros.snn.convert`). A face that
drives no class above zero gets uniform scores.

Options (``BackendSettings.options``): the :data:`OPTIONS` table, declared as
``loihi.<option>`` parameters and read through it (its defaults fill what is not given).
``timesteps``, ``dt`` and ``input_rate`` of 0 mean "as converted" (the SNN file,
:class:`~fer_ros.core.spike_encoding.ConvertedTiming`); the spike encoder's
``timesteps``, ``dt`` and ``max_rate`` must match them. ``emulator`` and
``vectorised_delivery`` choose how the emulator runs (:mod:`fer_ros.snn.emulator`).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, ClassVar

import numpy as np

from fer_ros.backends.base import (
    BackendSettings,
    BackendUnavailable,
    EnergyFigure,
    InferenceResult,
    InputKind,
    SpikeStats,
)
from fer_ros.core.options import Param, config_class, option_values, read_config
from fer_ros.core.paths import cache_dir
from fer_ros.core.spike_encoding import ConvertedTiming
from fer_ros.snn.activity import ActivityCounter
from fer_ros.snn.emulator.tables import table_key
from fer_ros.snn.energy import LoihiEnergyModel, NxsdkEnergyMeter
from fer_ros.snn.params import load_snn_params
from fer_ros.snn.runner import EMULATORS, RESETS, TARGETS, SnnRunner, has_nxsdk, resolve_target

log = logging.getLogger(__name__)

NENGO_VERSION_WARNING = r"This version of `nengo_loihi` has not been tested with your `nengo`"
INSTALL_NENGO_LOIHI = 'pip install nengo-loihi==1.1.0 "numpy<2"'
NXSDK_HELP = (
    "target 'loihi' needs Intel's NxSDK, which is not on PyPI: it is distributed to "
    "Intel Neuromorphic Research Community (INRC) members with access to Loihi "
    "hardware (install the NxSDK wheel from the INRC cloud/Kapoho Bay kit, then "
    "`python -c 'import nxsdk'` must work). Use target 'sim' for the emulator."
)


OPTIONS: tuple[Param, ...] = (
    Param(
        "target",
        "auto",
        "sim: nengo-loihi emulator; loihi: hardware via NxSDK; auto: loihi if NxSDK "
        "is importable, else sim (reported as a fallback)",
        choices=TARGETS,
    ),
    Param("timesteps", 0, "Steps per face; 0: as converted", minimum=0, maximum=10000),
    Param("dt", 0.0, "Seconds per step; 0: as converted", minimum=0.0, maximum=1.0),
    Param(
        "input_rate",
        0.0,
        "Max rate (Hz) of the spike encoder, i.e. its max_rate; 0: as converted",
        minimum=0.0,
        maximum=1e6,
    ),
    Param(
        "reset",
        "auto",
        "State reset between faces: state (emulator, exact), settle (input-free "
        "steps; hardware); auto: state on the emulator, settle on hardware",
        choices=RESETS,
    ),
    Param("settle_steps", 10, "Input-free steps per face when settling", minimum=0, maximum=10000),
    Param(
        "energy_static",
        "cores",
        "Leakage in the modelled energy: cores (share of used cores), chip, none",
        choices=("cores", "chip", "none"),
    ),
    Param(
        "step_time_us",
        0.0,
        "Chip time per step for modelled power; 0: activity-based model",
        minimum=0.0,
        maximum=1e6,
    ),
    Param(
        "emulator",
        "fast",
        "fast: the layered emulator, all faces of a frame layer by layer over all timesteps, "
        "bit-identical to nengo-loihi's emulator (a network it cannot mirror steps "
        "nengo-loihi instead, with the reason logged); nengo: step nengo-loihi's emulator",
        choices=EMULATORS,
    ),
    Param(
        "vectorised_delivery",
        True,
        "Whenever nengo-loihi's emulator is stepped: vectorised, bit-identical spike "
        "delivery (false: nengo-loihi's own)",
    ),
)
LoihiOptions = config_class("LoihiOptions", OPTIONS)


class LoihiBackend:
    """Converted SNN on Intel Loihi via nengo-loihi; see the module docstring."""

    name: ClassVar[str] = "loihi"
    input_kind: ClassVar[InputKind] = InputKind.SPIKES
    options: ClassVar[tuple[Param, ...]] = OPTIONS

    def __init__(self, settings: BackendSettings) -> None:
        try:
            with warnings.catch_warnings():
                # nengo-loihi 1.1.0 warns about every nengo after 3.2; 4.1.0 is the pairing
                # pinned in requirements-runtime.txt and checked by the SNN tests.
                warnings.filterwarnings("ignore", NENGO_VERSION_WARNING, UserWarning)
                import nengo_loihi  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable(
                f"nengo-loihi is not importable ({exc}); install it with: {INSTALL_NENGO_LOIHI}"
            ) from exc
        o: Any = read_config(LoihiOptions, option_values(OPTIONS, settings.options))
        requested = o.target
        if requested == "loihi" and not has_nxsdk():
            raise BackendUnavailable(NXSDK_HELP)
        try:
            target = resolve_target(requested)
        except ValueError as exc:
            raise BackendUnavailable(str(exc)) from exc
        export = settings.model_export or "snn"
        try:
            path = settings.card.file(export)
        except KeyError as exc:
            raise BackendUnavailable(
                f"{exc}; convert the CNN first: python -m fer_ros.training.snn_convert "
                f"--card {settings.card.path.name if settings.card.path else '<card>'}"
            ) from exc
        if not path.is_file():
            raise BackendUnavailable(f"SNN parameter file missing: {path}")
        params = load_snn_params(path)
        if o.dt and not np.isclose(o.dt, params.dt):
            raise BackendUnavailable(
                f"option dt={o.dt} does not match the converted network ({params.dt}); "
                "reconvert with python -m fer_ros.training.snn_convert or change the option"
            )
        timing = ConvertedTiming.of_params(params).resolve(o.timesteps, o.dt, o.input_rate)
        self.timesteps = timing.timesteps
        input_rate = timing.input_rate
        if input_rate != params.input_rate:
            log.warning(
                "input_rate %.0f Hz differs from the %.0f Hz the SNN was converted for; "
                "the input relay is rescaled, agreement was measured at the latter",
                input_rate,
                params.input_rate,
            )
        self._requested = requested
        self._warned_steps = False
        self._target = target
        self.params = params
        directory = cache_dir()  # the emulator's tables: configure in ~1 s, not 5-7 s
        tables = directory / f"{path.stem}-{table_key(path, input_rate)}.npz" if directory else None
        self._runner = SnnRunner(
            params,
            target=target,
            input_rate=input_rate,
            reset=o.reset,
            settle_steps=o.settle_steps,
            fast=o.vectorised_delivery,
            emulator=o.emulator,
            tables=tables,
        )
        self._counter = ActivityCounter(params)
        self._model = LoihiEnergyModel(
            static=o.energy_static,
            step_time=o.step_time_us * 1e-6 if o.step_time_us > 0 else None,
        )
        self._meter = NxsdkEnergyMeter(self._runner.sim) if target == "loihi" else None
        log.info(
            "loihi backend: %s on %s (%s emulator), %d cores, %d steps/face, reset %s",
            params.model_id,
            self.device,
            self._runner.emulator if target == "sim" else "no",
            params.n_cores,
            self.timesteps,
            self._runner.reset_mode,
        )

    @property
    def runtime(self) -> str:
        return self._runner.runtime

    @property
    def device(self) -> str:
        return "loihi" if self._target == "loihi" else "loihi-emulator"

    @property
    def fallback(self) -> bool:
        """True when ``target=auto`` found no NxSDK and fell back to the emulator."""
        return self._requested == "auto" and self._target != "loihi"

    def infer(self, batch: np.ndarray) -> InferenceResult:
        """Classify bool spikes (n, timesteps, H, W); one presentation per face."""
        if batch.ndim != 4 or batch.dtype != np.bool_:
            raise ValueError(
                f"expected bool spikes (n, timesteps, H, W), got {batch.dtype} {batch.shape}"
            )
        c_in, h_in, w_in = self.params.input_shape
        if batch.shape[2:] != (h_in, w_in) or c_in != 1:
            raise ValueError(f"spikes of shape {batch.shape[2:]} do not fit input {(h_in, w_in)}")
        if batch.shape[1] != self.timesteps and not self._warned_steps:
            self._warned_steps = True  # the network runs any length; say so once
            log.warning(
                "spike trains have %d steps, the backend expects %d: running %d",
                batch.shape[1],
                self.timesteps,
                batch.shape[1],
            )
        scores = np.zeros((len(batch), self.params.n_classes), np.float32)
        activities = []
        # All faces of the frame at once: one layer-wise pass on the fast emulator.
        for i, shown in enumerate(self._runner.run_batch(batch) if len(batch) else []):
            readout = np.maximum(shown.readout(), 0.0)
            total = readout.sum()
            scores[i] = readout / total if total > 0 else 1.0 / len(readout)
            activities.append(
                self._counter.count(shown.input_counts, shown.layer_counts, shown.timesteps)
            )
        energy: EnergyFigure | None = None
        if len(batch):
            energy = (
                self._meter.figure(*self._meter.delta())
                if self._meter is not None
                else self._model.figure(activities)
            )
        return InferenceResult(
            scores=scores, spike_stats=_stats(activities, self.timesteps), energy=energy
        )

    def close(self) -> None:
        self._runner.close()


def _stats(activities: list, timesteps: int) -> SpikeStats | None:
    """Totals over all faces; the first entry is the off-chip input (injected spikes)."""
    if not activities:
        return None
    first = activities[0]
    names = ("input", *(a.name for a in first.layers))
    neurons = (first.input_neurons, *(a.neurons for a in first.layers))
    spikes = [sum(act.input_spikes for act in activities)]
    for j in range(len(first.layers)):
        spikes.append(sum(act.layers[j].spikes for act in activities))
    return SpikeStats(
        layer_names=names,
        layer_spikes=tuple(int(s) for s in spikes),
        layer_neurons=tuple(int(n) for n in neurons),
        timesteps=timesteps,
        presentations=len(activities),
        synaptic_ops=int(sum(a.synaptic_ops for a in activities)),
        neuron_updates=int(sum(a.neuron_updates for a in activities)),
    )
