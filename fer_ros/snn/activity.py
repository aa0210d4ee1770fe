"""Per-layer activity counts of one presentation: spikes, synaptic ops, neuron updates.

Everything is computed from the probed spikes and the network structure:

* synaptic ops into layer ``l`` = sum over presynaptic neurons of
  (spikes of that neuron) x (its fan-out into layer ``l``); the input relay's spikes count
  for the first layer. Fan-out is structural: every synapse of the CNN's kernel that lands
  inside the next layer (zero-valued weights included, as Loihi stores them).
* neuron updates: every on-chip compartment is updated every step; an update is *active*
  when the neuron spikes in that step and *inactive* otherwise (our reading of Davies et
  al. 2018, Table 2, which does not define the split).
* spike messages: each spike is sent once to every core that holds synapses for it
  (Loihi routes per core-to-core fan-out edge). Blocks sit on cores in build order, as
  nengo-loihi's ``Greedy`` allocator places them; with four cores per tile and the 32
  tiles on an 8 (east-west) x 4 (north-south) mesh, a message from core ``a`` to core
  ``b`` travels the Manhattan distance between their tiles. Davies et al. (2018) give 128
  cores and per-tile figures but not the mesh shape: 4 cores/tile follows from 128 cores
  over the "1-32 tiles" of their Table 2; the 8 x 4 layout is our assumption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_ros.snn.params import SnnLayer, SnnParams

CORES_PER_TILE = 4
TILES_EAST_WEST = 8  # assumed mesh width in tiles (32 tiles = 8 x 4)


def tile_xy(core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mesh coordinates (east-west, north-south) of the tiles holding ``core``."""
    tile = np.asarray(core) // CORES_PER_TILE
    return tile % TILES_EAST_WEST, tile // TILES_EAST_WEST


def _axis_window(size_in: int, size_out: int, k: int, stride: int, pad: int) -> np.ndarray:
    """For each input index, the inclusive range [lo, hi] of outputs it feeds (hi < lo: none)."""
    i = np.arange(size_in)
    lo = np.maximum(-(-(i + pad - k + 1) // stride), 0)
    hi = np.minimum((i + pad) // stride, size_out - 1)
    return np.stack([lo, hi], axis=1)


def fan_out(layer: SnnLayer) -> np.ndarray:
    """Synapses per presynaptic neuron (in the previous layer's order) into ``layer``."""
    n_in = int(np.prod(layer.input_shape))
    if layer.kind == "dense":
        return np.full(n_in, layer.weights.shape[0], np.int64)
    c, h, w = layer.input_shape
    out_c, _, kh, kw = layer.weights.shape
    _, oh, ow = layer.output_shape
    rows = _axis_window(h, oh, kh, layer.stride, layer.padding)
    cols = _axis_window(w, ow, kw, layer.stride, layer.padding)
    n_rows = np.maximum(rows[:, 1] - rows[:, 0] + 1, 0)
    n_cols = np.maximum(cols[:, 1] - cols[:, 0] + 1, 0)
    per_pixel = out_c * n_rows[:, None] * n_cols[None, :]
    return np.broadcast_to(per_pixel, (c, h, w)).reshape(-1).astype(np.int64)


def destination_blocks(layer: SnnLayer) -> list[np.ndarray]:
    """For each presynaptic neuron, the indices of ``layer``'s blocks it sends spikes to."""
    n_in = int(np.prod(layer.input_shape))
    n_blocks = layer.n_blocks
    if layer.kind == "dense":
        every = np.arange(n_blocks)
        return [every] * n_in
    c, h, w = layer.input_shape
    out_c, _, kh, kw = layer.weights.shape
    _, oh, ow = layer.output_shape
    bc, bh, bw = layer.block_shape
    nbc, nbh, nbw = -(-out_c // bc), -(-oh // bh), -(-ow // bw)
    rows = _axis_window(h, oh, kh, layer.stride, layer.padding)
    cols = _axis_window(w, ow, kw, layer.stride, layer.padding)
    per_pixel: list[np.ndarray] = []
    for r_lo, r_hi in rows:
        for c_lo, c_hi in cols:
            if r_hi < r_lo or c_hi < c_lo:
                per_pixel.append(np.zeros(0, np.int64))
                continue
            br = np.arange(r_lo // bh, r_hi // bh + 1)
            bq = np.arange(c_lo // bw, c_hi // bw + 1)
            grid = (np.arange(nbc)[:, None, None] * nbh + br[None, :, None]) * nbw + bq
            per_pixel.append(grid.reshape(-1))
    return per_pixel * c  # every input channel of a pixel reaches the same blocks


def neuron_blocks(layer: SnnLayer) -> np.ndarray:
    """Block index of each neuron of ``layer`` (CNN order)."""
    if layer.kind == "dense":
        return np.arange(layer.n_neurons) // layer.block_shape[0]
    c, h, w = layer.output_shape
    bc, bh, bw = layer.block_shape
    nbh, nbw = -(-h // bh), -(-w // bw)
    ci, ri, qi = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((ci // bc * nbh + ri // bh) * nbw + qi // bw).reshape(-1)


@dataclass(frozen=True)
class LayerActivity:
    """Counts for one on-chip layer during one presentation."""

    name: str
    neurons: int
    spikes: int  # spikes emitted by this layer
    synaptic_ops: int  # synaptic events delivered into this layer
    active_updates: int  # neuron-steps with a spike
    inactive_updates: int  # neuron-steps without one
    messages: int  # core-to-core spike messages sent by this layer's spikes
    hops_east_west: int  # tile hops travelled by those messages, per mesh axis
    hops_north_south: int
    blocks: int


@dataclass(frozen=True)
class Activity:
    """Counts for one presentation (one face) through the whole network."""

    input_spikes: int  # spikes injected from the host (off-chip relay)
    input_neurons: int
    layers: tuple[LayerActivity, ...]
    timesteps: int

    @property
    def synaptic_ops(self) -> int:
        return sum(a.synaptic_ops for a in self.layers)

    @property
    def neuron_updates(self) -> int:
        return sum(a.active_updates + a.inactive_updates for a in self.layers)

    @property
    def spikes(self) -> int:
        return sum(a.spikes for a in self.layers)


class ActivityCounter:
    """Precomputed fan-outs and routes of one network; counts presentations."""

    def __init__(self, params: SnnParams) -> None:
        self.params = params
        self.fan_out = [fan_out(layer) for layer in params.layers]
        offsets = np.cumsum([0] + [layer.n_blocks for layer in params.layers])
        # per presynaptic neuron of layer l: messages sent and hops travelled per spike
        self._routes = [
            self._route(params.layers[i], params.layers[i + 1], offsets[i], offsets[i + 1])
            for i in range(len(params.layers) - 1)
        ]

    @staticmethod
    def _route(src: SnnLayer, dst: SnnLayer, src_core0: int, dst_core0: int) -> np.ndarray:
        """(neurons, 3): messages, east-west hops, north-south hops per spike."""
        sx, sy = tile_xy(src_core0 + neuron_blocks(src))
        out = np.zeros((src.n_neurons, 3), np.int64)
        for n, blocks in enumerate(destination_blocks(dst)):
            dx, dy = tile_xy(dst_core0 + blocks)
            out[n] = (len(blocks), np.abs(dx - sx[n]).sum(), np.abs(dy - sy[n]).sum())
        return out

    def count(
        self, input_counts: np.ndarray, layer_counts: tuple[np.ndarray, ...], timesteps: int
    ) -> Activity:
        """Counts from per-neuron spike totals (input pixels, then each layer in order)."""
        layers = []
        pre = np.asarray(input_counts, np.int64).reshape(-1)
        for i, (layer, post) in enumerate(zip(self.params.layers, layer_counts, strict=True)):
            post = np.asarray(post, np.int64).reshape(-1)
            spikes = int(post.sum())
            route = post @ self._routes[i] if i < len(self._routes) else np.zeros(3, np.int64)
            layers.append(
                LayerActivity(
                    name=layer.name,
                    neurons=layer.n_neurons,
                    spikes=spikes,
                    synaptic_ops=int(pre @ self.fan_out[i]),
                    active_updates=spikes,
                    inactive_updates=layer.n_neurons * timesteps - spikes,
                    messages=int(route[0]),
                    hops_east_west=int(route[1]),
                    hops_north_south=int(route[2]),
                    blocks=layer.n_blocks,
                )
            )
            pre = post
        return Activity(
            input_spikes=int(np.asarray(input_counts).sum()),
            input_neurons=int(np.prod(self.params.input_shape)),
            layers=tuple(layers),
            timesteps=int(timesteps),
        )
