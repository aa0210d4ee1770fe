"""Loihi's neuron as a PyTorch activation: the T-step rate staircase and its smooth mid-line.

Units. Everything in Loihi-aware training is in *threshold units*: a hidden neuron's
pre-activation ``z`` is the drive it receives per timestep as a fraction of its firing
threshold, and its activation is its spike count divided by the presentation's ``T``
steps. With ``max_rate * dt = 1`` (:data:`MAX_RATE` at :data:`DT`) and every layer scale
fixed to 1, the SNN's weights are the CNN's (times ``max_rate``), so what is trained is
what runs.

The neuron (Loihi 1, nengo-loihi's emulator, :mod:`fer_ros.snn.neurons`): no leak, the
membrane is reset *to zero* after a spike and a spike needs ``v > 1``, so under a constant
drive ``u`` it fires every ``floor(1/u) + 1`` steps, i.e. ``T`` steps give
``floor(T / (floor(1/u) + 1))`` spikes. :class:`LoihiRate` uses that staircase in the
forward pass and the smooth ``u / (1 + u/2)`` (the staircase's mid-line) for the gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from fer_ros.snn.energy import LoihiConstants
from fer_ros.training.model import ArchConfig, FerCnn

MAX_RATE = 1000.0  # Hz; max_rate * dt = 1 spike per step, so threshold units = CNN units
DT = 0.001
INPUT_DELAY = 1  # the encoder train reaches conv0 one step later (matches the emulator exactly)
VMIN = -64.0  # membrane floor in thresholds (IntegratingRectifiedLinear)
VMIN_ABS = 64.0
SYNOP_J = LoihiConstants().e_synop  # energy per synaptic op, for the training energy terms


def staircase(u: torch.Tensor, timesteps: int, window: int | None = None) -> torch.Tensor:
    """Spikes per step of a reset-to-zero IF neuron at constant drive ``u``, over T steps.

    ``window`` (default T): the steps in which the layer's input actually arrives (T minus
    its delay); the layer's total charge ``T * u`` then falls into that window, so the
    count is ``floor(window * stair(u * T / window))``, still divided by T.
    """
    steps = int(timesteps)
    win = steps if window is None else int(window)
    if 0 < win < steps:
        u = u * (steps / win)
    pos = u > 0
    period = torch.floor(1.0 / torch.where(pos, u, torch.ones_like(u))) + 1.0
    rate = torch.where(pos, 1.0 / period, torch.zeros_like(u))
    if steps > 0:
        rate = torch.floor(rate * win + 1e-6) / steps
    return rate


def smooth_window(u: torch.Tensor, timesteps: int, window: int | None = None) -> torch.Tensor:
    """:func:`smooth_rate` with the same delay window as :func:`staircase`."""
    steps = int(timesteps)
    win = steps if window is None else int(window)
    if 0 < win < steps:
        return smooth_rate(u * (steps / win)) * (win / steps)
    return smooth_rate(u)


def layer_windows(n_hidden: int, timesteps: int, delay: float) -> list[int]:
    """Steps of input each hidden layer integrates: ``T - delay * (l + 1)`` (>= 1)."""
    return [max(1, round(timesteps - delay * (i + 1))) for i in range(n_hidden)]


def smooth_rate(u: torch.Tensor) -> torch.Tensor:
    """Differentiable mid-line of the staircase: ``u / (1 + u/2)``, flat above u = 2."""
    u = torch.clamp(u, 0.0, 2.0)
    return u / (1.0 + 0.5 * u)


class LoihiRate(nn.ReLU):
    """ReLU replacement with Loihi's rate in the forward pass (``mode``):

    * ``"relu"``: plain ReLU (pretraining, and what the ONNX export computes);
    * ``"rate"``: the T-step staircase, gradient of :func:`smooth_rate`;
    * ``"smooth"``: :func:`smooth_rate` itself.

    Subclasses ``nn.ReLU`` so that :func:`fer_ros.training.graph.fold` still recognises it.
    """

    def __init__(self, timesteps: int = 50, mode: str = "rate", window: int | None = None) -> None:
        super().__init__()
        self.timesteps = int(timesteps)
        self.mode = mode
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "relu":
            return F.relu(x)
        smooth = smooth_window(x, self.timesteps, self.window)
        if self.mode == "smooth":
            return smooth
        return smooth + (staircase(x, self.timesteps, self.window) - smooth).detach()

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}, window={self.window}, mode={self.mode}"


def loihi_cnn(
    cfg: ArchConfig, n_classes: int, timesteps: int, mode: str = "rate", delay: float = 0.0
) -> FerCnn:
    """A :class:`FerCnn` whose hidden ReLUs are :class:`LoihiRate` (layer ``l`` integrating
    ``T - delay * (l + 1)`` steps of input)."""
    model = FerCnn(cfg, n_classes)
    mods = list(model.net)
    hidden = [i for i, m in enumerate(mods) if type(m) is nn.ReLU]
    windows = layer_windows(len(hidden), timesteps, delay)
    for i, w in zip(hidden, windows, strict=True):
        mods[i] = LoihiRate(timesteps, mode, w if delay > 0 else None)
    model.net = nn.Sequential(*mods)
    return model


def set_mode(model: nn.Module, mode: str) -> None:
    for m in model.modules():
        if isinstance(m, LoihiRate):
            m.mode = mode
