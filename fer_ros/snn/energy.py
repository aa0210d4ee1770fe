"""Loihi energy per inference: modelled from activity counts, or measured with NxSDK.

Modelled (emulator, ``FigureSource.MODELLED``)::

    E_dyn  = synaptic_ops * E_synop
           + active_updates * E_active + inactive_updates * E_inactive
           + messages * E_spike_tile + hops_EW * E_hop_EW + hops_NS * E_hop_NS
    t_step = T_barrier(tiles) + max over layers of the per-core work of one step
             (synops * t_synop + active * t_active + inactive * t_inactive) / cores
    t      = timesteps * t_step                      (unthrottled chip, one face)
    E      = E_dyn + P_static * t ;   P = E / t

Per-operation energies and times: Davies et al., "Loihi: A Neuromorphic Manycore
Processor with On-Chip Learning", IEEE Micro 38(1):82-99, 2018, Table 2 ("pre-silicon
SDF and SPICE simulations, consistent with early post-silicon characterization", values
at 0.75 V). The primary PDF was not reachable offline; every value was checked against
independent verbatim transcriptions of that table in public code and notes (they agree;
one simulator's Loihi preset uses 4.2 pJ for N-S hops where the paper has 4.0).

Static power: Frady et al., "Neuromorphic Nearest-Neighbor Search Using Intel's Pohoiki
Springs", NICE 2020, Table 1: 3.34 W static on a 32-chip board -> 104.4 mW per chip,
measured at an unstated supply voltage (Table 2 above is at 0.75 V: mixing the two is
a known approximation). ``static="cores"`` charges the per-core share (104.4 mW / 128
cores) for the cores the network occupies; ``"chip"`` charges the whole chip; ``"none"``
reports dynamic energy only (the convention of many Loihi papers).

Measured (hardware, ``FigureSource.MEASURED``): :class:`NxsdkEnergyMeter` reads NxSDK's
energy and execution-time probes, the way nengo-loihi reaches the board
(``sim.sims["loihi"].nxsdk_board``); written against NxSDK 0.9/1.0 and not runnable here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_ros.core.figures import EnergyFigure, FigureSource
from fer_ros.snn.activity import CORES_PER_TILE, Activity
from fer_ros.snn.params import MAX_CORES_PER_CHIP

STATIC_SCOPES = ("cores", "chip", "none")


@dataclass(frozen=True)
class LoihiConstants:
    """Per-event energies (J) and times (s) of Loihi 1; Davies et al. 2018, Table 2."""

    e_synop: float = 23.6e-12  # "Energy per synaptic spike op (min)"
    e_active: float = 81e-12  # "Energy per neuron update (active / inactive)": 81 pJ
    e_inactive: float = 52e-12  # ... / 52 pJ
    e_spike_tile: float = 1.7e-12  # "Within-tile spike energy"
    e_hop_ew: float = 3.0e-12  # "Energy per tile hop (E-W / N-S)": 3.0 pJ
    e_hop_ns: float = 4.0e-12  # ... / 4.0 pJ
    t_synop: float = 3.5e-9  # "Time per synaptic spike op (max)"
    t_active: float = 8.4e-9  # "Time per neuron update (active / inactive)": 8.4 ns
    t_inactive: float = 5.3e-9  # ... / 5.3 ns
    t_barrier_1_tile: float = 113e-9  # "Mesh-wide barrier sync time (1-32 tiles)": 113-
    t_barrier_32_tiles: float = 465e-9  # ... 465 ns; linear in between (our assumption)
    p_static_chip: float = 3.34 / 32  # W; Frady et al. 2020, Table 1 (3.34 W, 32 chips)

    def barrier(self, tiles: int) -> float:
        tiles = min(max(tiles, 1), 32)
        return self.t_barrier_1_tile + (tiles - 1) / 31 * (
            self.t_barrier_32_tiles - self.t_barrier_1_tile
        )


@dataclass(frozen=True)
class EnergyBreakdown:
    """Modelled energy of one presentation, by term (J), and its chip time (s)."""

    synaptic: float
    neuron_updates: float
    routing: float
    static: float
    seconds: float

    @property
    def dynamic(self) -> float:
        return self.synaptic + self.neuron_updates + self.routing

    @property
    def total(self) -> float:
        return self.dynamic + self.static

    @property
    def power(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


class LoihiEnergyModel:
    """Turns :class:`~fer_ros.snn.activity.Activity` into energy, time and power.

    Parameters
    ----------
    constants : LoihiConstants
        Per-event figures (defaults: Davies et al. 2018).
    static : {"cores", "chip", "none"}
        Which leakage to charge (see the module docstring).
    step_time : float, optional
        Seconds per timestep; ``None`` uses the unthrottled model above. nengo-loihi and
        NxSDK can also throttle to real time, e.g. 1e-3 s per step.
    """

    def __init__(
        self,
        constants: LoihiConstants | None = None,
        static: str = "cores",
        step_time: float | None = None,
    ) -> None:
        if static not in STATIC_SCOPES:
            raise ValueError(f"unknown static scope {static!r}; use one of {STATIC_SCOPES}")
        self.c = constants or LoihiConstants()
        self.static = static
        self.step_time = step_time

    def seconds(self, activity: Activity) -> float:
        """Chip time of one presentation."""
        steps = max(activity.timesteps, 1)
        if self.step_time is not None:
            return steps * self.step_time
        c = self.c
        cores = sum(a.blocks for a in activity.layers)
        tiles = -(-cores // CORES_PER_TILE)
        busiest = max(
            (
                a.synaptic_ops * c.t_synop
                + a.active_updates * c.t_active
                + a.inactive_updates * c.t_inactive
            )
            / (steps * a.blocks)  # a layer's work is spread over its cores, in parallel
            for a in activity.layers
        )
        return steps * (c.barrier(tiles) + busiest)

    def breakdown(self, activity: Activity) -> EnergyBreakdown:
        c = self.c
        layers = activity.layers
        seconds = self.seconds(activity)
        cores = sum(a.blocks for a in layers)
        static_power = {
            "cores": c.p_static_chip * cores / MAX_CORES_PER_CHIP,
            "chip": c.p_static_chip,
            "none": 0.0,
        }[self.static]
        return EnergyBreakdown(
            synaptic=sum(a.synaptic_ops for a in layers) * c.e_synop,
            neuron_updates=sum(
                a.active_updates * c.e_active + a.inactive_updates * c.e_inactive for a in layers
            ),
            routing=sum(
                a.messages * c.e_spike_tile
                + a.hops_east_west * c.e_hop_ew
                + a.hops_north_south * c.e_hop_ns
                for a in layers
            ),
            static=static_power * seconds,
            seconds=seconds,
        )

    def describe(self) -> str:
        """The model name with every constant it uses (goes into EnergyFigure.model)."""
        c = self.c
        step = (
            f"step {self.step_time * 1e6:g} us (fixed)"
            if self.step_time is not None
            else f"step = barrier {c.t_barrier_1_tile * 1e9:g}-{c.t_barrier_32_tiles * 1e9:g} ns"
            f" + busiest core (synop {c.t_synop * 1e9:g} ns, update "
            f"{c.t_active * 1e9:g}/{c.t_inactive * 1e9:g} ns)"
        )
        return (
            f"loihi1 activity model (Davies et al. 2018 Table 2): synop {c.e_synop * 1e12:g} pJ, "
            f"update active/inactive {c.e_active * 1e12:g}/{c.e_inactive * 1e12:g} pJ, "
            f"spike in tile {c.e_spike_tile * 1e12:g} pJ, hop E-W/N-S "
            f"{c.e_hop_ew * 1e12:g}/{c.e_hop_ns * 1e12:g} pJ; static {self.static} "
            f"({c.p_static_chip * 1e3:.1f} mW/chip, Frady et al. 2020); {step}"
        )

    def figure(self, activities: list[Activity]) -> EnergyFigure:
        """Energy of all presentations of one inference call (energy summed, mean power)."""
        parts = [self.breakdown(a) for a in activities]
        energy = sum(p.total for p in parts)
        seconds = sum(p.seconds for p in parts)
        return EnergyFigure(
            energy_j=float(energy),
            power_w=float(energy / seconds) if seconds > 0 else 0.0,
            source=FigureSource.MODELLED,
            model=self.describe(),
        )


class NxsdkEnergyMeter:
    """Energy and time of each presentation from NxSDK's on-board probes (Loihi hardware).

    Create it after the nengo-loihi simulator (the board exists then) and before the
    first run. NxSDK's probes report totals over the run so far, in microjoules and
    microseconds; :meth:`delta` returns what one presentation added.
    """

    def __init__(self, sim: object, max_steps: int = 10_000_000, bin_size: int = 1) -> None:
        from nengo_loihi.hardware.nxsdk_shim import HAS_NXSDK

        if not HAS_NXSDK:
            raise RuntimeError("NxSDK is not importable; energy can only be modelled")
        from nxsdk.api.enums.api_enums import ProbeParameter
        from nxsdk.graph.monitor.probes import PerformanceProbeCondition

        board = sim.sims["loihi"].nxsdk_board  # type: ignore[attr-defined]
        condition = PerformanceProbeCondition(
            tStart=1, tEnd=max_steps, bufferSize=1024, binSize=bin_size
        )
        self._energy = board.probe(ProbeParameter.ENERGY, condition)
        self._time = board.probe(ProbeParameter.EXECUTION_TIME, condition)
        self._last = (0.0, 0.0)

    def delta(self) -> tuple[float, float]:
        """(joules, seconds) since the previous call."""
        energy_uj = float(self._energy.totalEnergy)
        time_us = float(self._time.totalExecutionTime)
        d_e, d_t = energy_uj - self._last[0], time_us - self._last[1]
        self._last = (energy_uj, time_us)
        return d_e * 1e-6, d_t * 1e-6

    def figure(self, joules: float, seconds: float) -> EnergyFigure:
        return EnergyFigure(
            energy_j=joules,
            power_w=joules / seconds if seconds > 0 else 0.0,
            source=FigureSource.MEASURED,
            model="NxSDK energy probe (totalEnergy) / execution-time probe",
        )
