"""Loihi 1 emulation of the builder's feedforward SNNs, layer by layer over all steps and faces.

nengo-loihi's emulator advances every compartment of the chip one step at a time in Python;
that loop, not the arithmetic, is its cost. In a feedforward chain whose layers are only
connected forward (what :mod:`fer_ros.snn.builder` makes), layer ``l`` at step ``t`` depends only on
layer ``l - 1``'s spikes up to ``t - 1``. So one presentation of a batch of faces is
computed a layer at a time:

1. the synaptic input of every step and face at once: one matrix product of the
   time-batched spike tensor with the layer's integer weights (an im2col GEMM for a
   convolution, its cores' kernels side by side; a dense GEMM for a dense layer; a sparse
   product of the built synapses otherwise), or, when few of the input spikes are ones,
   one weight row added per spike (:mod:`.kernels`);
2. the compartment dynamics as a scan over the steps, on the whole layer (:mod:`.scan`).

Both run a cache-sized chunk of steps at a time, and input rows that repeat (a pixel at
the encoder's maximum rate spikes at every step) are multiplied once.

Every number is nengo-loihi's own: weights (their exponents applied) are read from the
built synapses and axons, thresholds, biases, decays, refractory delays and ``vmin/vmax``
from the emulator's compartment state, and the arithmetic (:mod:`.integers`) mirrors
nengo-loihi 1.1's
``CompartmentState.update`` (``decay_int`` truncation, 21-bit input and 23-bit current
wrap-around with a warning, clipping, refractory clamp, spike and reset), with its timing:
a spike reaches the next layer one step later, and the face's input spikes (relayed off
chip) reach the first layer one step after they are sent, so the last input row and the
spikes of the last step never arrive (the runner's state reset drops them). Integer values
are held in float32 when every intermediate provably stays below 2**24 and in float64
otherwise, where they are exact; products are rescaled by the weights' common power of two
so that BLAS sums are exact too. Spikes and voltages equal nengo-loihi's at every step
(``test/test_layered_emulator.py``).

:func:`~fer_ros.snn.emulator.mirror.supports` names what a network has that this emulator
does not mirror; :class:`~fer_ros.snn.runner.SnnRunner` then steps nengo-loihi instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_ros.snn.emulator import kernels
from fer_ros.snn.emulator.integers import DECAY_BITS, Q_BITS, U_BITS, wrap_float
from fer_ros.snn.emulator.mirror import supports
from fer_ros.snn.emulator.presentation import Presentation
from fer_ros.snn.emulator.scan import ChipLayer, CompartmentScan
from fer_ros.snn.emulator.synapses import Source, coo_entries, probe_blocks

log = logging.getLogger(__name__)

EXACT_F32 = 2**24  # integers below this are exact in float32
EXACT_F64 = 2**53
CHUNK_BYTES = 1 << 20  # im2col patches per GEMM: cache-sized, so batches scale linearly
SCATTER_DENSITY = 0.1  # below this share of spikes, input is added a spike at a time


@dataclass(frozen=True)
class LayerTrace:
    """Spikes and voltages of every layer, in each layer's nengo (ensemble) neuron order."""

    spikes: tuple[np.ndarray, ...]  # per layer: bool (n_faces, timesteps, neurons)
    voltages: tuple[np.ndarray | None, ...]  # per layer: float64 voltage, None if not recorded


def _common_shift(values: np.ndarray) -> int:
    """Largest ``k`` such that every weight is a multiple of ``2**k`` (exact rescaling)."""
    ints = np.abs(values[values != 0]).astype(np.int64)
    if ints.size == 0:
        return 0
    return int(np.min(ints & -ints)).bit_length() - 1  # lowest set bit of any weight


def _pow2_or_none(k: np.ndarray, identity: float) -> tuple[np.ndarray | float | None, bool]:
    """Decay factors as a scalar when uniform (None when identity); and if all are 2**-n."""
    if np.all(k == identity):
        return None, True
    pow2 = bool(np.all((k == 0) | (np.frexp(k)[0] == 0.5)))
    if np.all(k == k[0]):
        return float(k[0]), pow2
    return k, pow2


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first occurrence of each distinct row, row -> distinct index), or None if few repeat."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    inverse = np.empty(len(x), np.int64)
    for r, key in enumerate(np.packbits(x, axis=1)):
        index = seen.setdefault(key.tobytes(), len(first))
        if index == len(first):
            first.append(r)
        inverse[r] = index
    if 2 * len(first) > len(x):
        return None
    return np.asarray(first, np.int64), inverse


def _padded(layer: ChipLayer, shape: tuple[int, ...]) -> np.ndarray:
    """A zero-bordered im2col buffer, kept per layer: only its interior is ever written."""
    buffer = layer.scratch.get(shape)
    if buffer is None:
        shapes = [key for key in layer.scratch if isinstance(key, tuple)]
        if len(shapes) >= 8:  # many batch sizes seen: do not hoard memory
            for key in shapes:
                del layer.scratch[key]
        buffer = layer.scratch[shape] = np.zeros(shape, layer.gemm_dtype)
    return buffer


def _sparse_enough(x: np.ndarray) -> bool:
    """Whether adding a weight row per spike beats the dense product for 0/1 spikes ``x``.

    The dense product does every multiply at BLAS speed; the spike-driven one only the
    nonzero ones, at a fraction of it. Measured on the committed SNN's layers (random
    spikes, one thread), the two cost the same at 8 % ones (conv1) to 30 % (dense0):
    SCATTER_DENSITY sits at the low end.
    """
    return bool(np.count_nonzero(x) < SCATTER_DENSITY * x.size)


def _reach(layer: ChipLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a convolution: the output positions each input position reaches, and by which
    tap, as (first, position, tap): input position p reaches ``position[first[p]:first[p+1]]``."""
    found = layer.scratch.get("reach")
    if found is None:
        h, w, _, kh, kw, stride, pad, oh, ow, _ = layer.window
        oy, ox, dy, dx = np.meshgrid(
            np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), indexing="ij"
        )
        y, x = oy * stride - pad + dy, ox * stride - pad + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        source = (y * w + x)[inside]
        order = np.argsort(source, kind="stable")
        position = (oy * ow + ox)[inside][order]
        tap = (dy * kw + dx)[inside][order]
        first = np.searchsorted(source[order], np.arange(h * w + 1)).astype(np.int64)
        found = layer.scratch["reach"] = (first, position.astype(np.int64), tap.astype(np.int64))
    return found


def _chunk_rows(layer: ChipLayer, n_source: int) -> int:
    """Rows (steps x faces) of synaptic input computed at once: about CHUNK_BYTES of work."""
    if layer.kind == "conv":
        n_pos, _ = layer.conv_shape
        per_row = n_pos * layer.window[3] * layer.window[4] * layer.window[2]
    else:
        per_row = n_source + layer.n
    return max(1, CHUNK_BYTES // (per_row * np.dtype(layer.gemm_dtype).itemsize))


class LayeredEmulator:
    """nengo-loihi's emulator for one built feedforward SNN, a layer at a time.

    Parameters
    ----------
    sim : nengo_loihi.Simulator
        Built on the emulator target from ``net`` (its state is not used or changed).
    net : SnnNetwork
        The network the simulator was built from (layers, probes, input relay).

    Presentations are stateless (every batch starts from the reset state, as
    ``SnnRunner``'s ``reset="state"`` leaves the chip); one batch at a time per instance
    (it keeps scratch buffers).
    """

    def __init__(self, sim: object, net: object) -> None:
        reason = supports(sim, net)
        if reason:
            raise ValueError(f"layered emulator cannot run this network: {reason}")
        import scipy.sparse

        self._sparse = scipy.sparse
        emulator = sim.sims["emulator"]  # type: ignore[attr-defined]
        comp = emulator.compartment
        slices = emulator.block_info.slices
        params = getattr(net, "params", None)
        specs = list(getattr(params, "layers", ()) or ())
        self.n_inputs = int(emulator.inputs[0].n_neurons)
        self.layers: list[ChipLayer] = []
        checked: set = set()
        sources = [Source(emulator.inputs[0].axons, np.arange(self.n_inputs))]
        n_source = self.n_inputs
        source_hwc: tuple[int, int, int] | None = None  # input internal order is (C, H, W)
        ensembles = list(net.ensembles)  # type: ignore[attr-defined]
        for i, (ens, probe) in enumerate(zip(ensembles, net.spike_probes, strict=True)):  # type: ignore[attr-defined]
            spec = specs[i] if len(specs) == len(ensembles) else None
            blocks, ids = probe_blocks(sim, probe)
            n = len(ids)
            conv = spec is not None and spec.kind == "conv" and spec.n_neurons == n
            if conv:  # internal order channels-last: (position, channel)
                c_out = spec.output_shape[0]
                hw = n // c_out
                e = np.arange(n)
                ens_of_internal = (e % c_out) * hw + e // c_out
            else:
                ens_of_internal = np.arange(n)
            internal_of_ens = np.empty(n, np.int64)
            internal_of_ens[ens_of_internal] = np.arange(n)
            glob = np.empty(n, np.int64)
            targets: dict = {}
            block_sources: list[Source] = []
            start = 0
            for block in blocks:
                sl = slices[block]
                internal = internal_of_ens[ids[start : start + block.n_neurons]]
                glob[internal] = np.arange(sl.start, sl.stop)
                for synapse in block.synapses:
                    targets[synapse] = (block.n_neurons, internal)
                block_sources.append(Source(block.axons, internal))
                start += block.n_neurons
            rows, cols, vals = coo_entries(sources, targets, checked)
            matrix = self._sparse.csr_matrix((vals, (rows, cols)), shape=(n_source, n))
            matrix.sum_duplicates()
            layer = self._compartments(ens.label or f"layer {i}", comp, glob, matrix)
            layer.ens_of_internal, layer.internal_of_ens = ens_of_internal, internal_of_ens
            if conv and self._try_conv(layer, spec, matrix, blocks, ids, source_hwc):
                layer.kind = "conv"
            elif matrix.nnz >= 0.25 * max(n_source * n, 1):
                layer.kind = "dense"
                layer.matrix = (matrix.toarray() / 2.0**layer.shift).astype(layer.gemm_dtype)
            else:
                layer.kind = "sparse"
                layer.matrix = (matrix / 2.0**layer.shift).astype(layer.gemm_dtype).tocsr()
            self.layers.append(layer)
            log.debug(
                "layer %s: %d neurons, %s input, %s state",
                layer.name,
                n,
                layer.kind,
                np.dtype(layer.dtype).name,
            )
            sources, n_source = block_sources, n
            source_hwc = (
                (spec.output_shape[1], spec.output_shape[2], spec.output_shape[0]) if conv else None
            )
        self.vth_out = self.layers[-1].vth[self.layers[-1].internal_of_ens].astype(np.float64)

    @classmethod
    def from_tables(
        cls, n_inputs: int, layers: list[ChipLayer], vth_out: np.ndarray
    ) -> LayeredEmulator:
        """The emulator from tables read before (:mod:`.tables`), with no model built."""
        import scipy.sparse

        emulator = cls.__new__(cls)
        emulator._sparse = scipy.sparse
        emulator.n_inputs, emulator.layers, emulator.vth_out = n_inputs, layers, vth_out
        return emulator

    def warm_up(self) -> None:
        """Present an empty two-step batch: the compiled kernels (:mod:`.kernels`) are
        compiled, or read from their cache, now rather than at the first face."""
        self.run_batch(np.zeros((1, 2, self.n_inputs), bool))

    # ------------------------------------------------------------------ construction

    @staticmethod
    def _compartments(name: str, comp: object, glob: np.ndarray, matrix: object) -> ChipLayer:
        """Compartment parameters (internal order) and the exactness decisions for a layer."""
        get = lambda attr: np.asarray(getattr(comp, attr)[glob], np.float64)  # noqa: E731
        vth, vmin, vmax, bias = get("vth"), get("vmin"), get("vmax"), get("bias")
        ref = get("ref")
        ru = (2**DECAY_BITS - 1) - get("decay_u")  # decay_int(offset=1)
        rv = 2**DECAY_BITS - get("decay_v")
        ku, ku_pow2 = _pow2_or_none(ru / 2**DECAY_BITS, 0.0)
        kv, kv_pow2 = _pow2_or_none(rv / 2**DECAY_BITS, 1.0)
        weights = matrix.data  # type: ignore[attr-defined]
        abs_sum = np.asarray(abs(matrix).sum(axis=0)).ravel() if weights.size else np.zeros(1)  # type: ignore[operator]
        q_bound = float(abs_sum.max()) if abs_sum.size else 0.0
        # rescale only when a float32 sum could otherwise lose an integer
        shift = _common_shift(weights) if q_bound >= EXACT_F32 else 0
        gemm_dtype = np.float32 if q_bound / 2.0**shift < EXACT_F32 else np.float64
        if q_bound / 2.0**shift >= EXACT_F64:
            raise ValueError(f"layer {name}: synaptic sums too large to add exactly")
        wrap_q = q_bound >= 2**Q_BITS
        q_max = min(q_bound, 2.0**Q_BITS)
        c_max = q_max if ku is None else q_max * 2**DECAY_BITS / (2**DECAY_BITS - ru.max())
        wrap_c = c_max >= 2**U_BITS
        c_max = min(c_max, 2.0**U_BITS)
        u_max = c_max + float(np.abs(bias).max())
        wrap_u = u_max >= 2**U_BITS
        u_max = min(u_max, 2.0**U_BITS)
        v_max = float(max(np.abs(vmin).max(), np.abs(vmax).max())) + u_max
        wrap_v = v_max >= 2**31
        small = v_max < EXACT_F32 and not (wrap_c or wrap_u or wrap_v)
        dtype = np.float32 if small and ku_pow2 and kv_pow2 else np.float64
        cast = lambda x: x if x is None or isinstance(x, float) else x.astype(dtype)  # noqa: E731
        return ChipLayer(
            name=name,
            n=len(glob),
            ens_of_internal=np.arange(len(glob)),
            internal_of_ens=np.arange(len(glob)),
            dtype=dtype,
            vth=vth.astype(dtype),
            vmin=vmin.astype(dtype),
            # vmax > vth: a clipped voltage spikes (or is refractory) and is zeroed anyway
            vmax=None if np.all(vmax > vth) else vmax.astype(dtype),
            bias=None if not np.any(bias) else bias.astype(dtype),
            ku=cast(ku),
            kv=cast(kv),
            ref=ref.astype(dtype) if np.any(ref > 1) else None,
            wrap_q=bool(wrap_q),
            wrap_c=bool(wrap_c),
            wrap_u=bool(wrap_u),
            wrap_v=bool(wrap_v),
            shift=shift,
            gemm_dtype=gemm_dtype,
        )

    def _try_conv(
        self,
        layer: ChipLayer,
        spec: object,
        matrix: object,
        blocks: list,
        ids: np.ndarray,
        source_hwc: tuple[int, int, int] | None,
    ) -> bool:
        """Read the layer's integer kernel off its synapses; True if it reproduces them all.

        The geometry is the CNN's (PyTorch) convolution; the weights are nengo-loihi's
        discretised ones, which differ between cores that hold different channels (each
        core has its own weight scale). Any synapse outside the kernel's taps, any tap whose
        weight differs between compartments of one channel, or cores that do not tile
        (positions x channels) reject the conv path: the layer then uses the sparse
        product of the very same synapses.
        """
        c_in, h, w = spec.input_shape  # type: ignore[attr-defined]
        c_out, oh, ow = spec.output_shape  # type: ignore[attr-defined]
        _, _, kh, kw = spec.weights.shape  # type: ignore[attr-defined]
        stride, pad = int(spec.stride), int(spec.padding)  # type: ignore[attr-defined]
        n_src = c_in * h * w
        if matrix.shape[0] != n_src or oh * ow * c_out != layer.n:  # type: ignore[attr-defined]
            return False
        # taps in (dy, dx, ci) order, source index in the source's internal order
        dy, dx, ci = (
            a.ravel()
            for a in np.meshgrid(np.arange(kh), np.arange(kw), np.arange(c_in), indexing="ij")
        )
        pos = np.arange(oh * ow)
        iy = (pos // ow)[:, None] * stride - pad + dy[None, :]
        ix = (pos % ow)[:, None] * stride - pad + dx[None, :]
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        if source_hwc is None:  # chip input: (C, H, W)
            src = ci[None, :] * (h * w) + iy * w + ix
        else:  # conv layer: channels-last
            src = (iy * w + ix) * c_in + ci[None, :]
        src = np.where(inside, src, n_src)  # n_src: the zero padding column
        if source_hwc is not None and source_hwc != (h, w, c_in):
            return False
        csc = matrix.tocsc()  # type: ignore[attr-defined]
        csc.sort_indices()
        col_of = np.repeat(np.arange(layer.n), np.diff(csc.indptr))
        keys = col_of * (n_src + 1) + csc.indices
        nonzero = np.bincount(col_of[csc.data != 0], minlength=layer.n)
        n_taps = src.shape[1]
        kernel = np.zeros((n_taps, c_out))
        known = np.zeros((n_taps, c_out), bool)
        cover = np.zeros((oh * ow, c_out), np.int64)
        start = 0
        for block in blocks:
            internal = layer.internal_of_ens[ids[start : start + block.n_neurons]]
            start += block.n_neurons
            p, ch = internal // c_out, internal % c_out
            query = internal[:, None] * (n_src + 1) + src[p]
            at = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
            found = (keys[at] == query) if len(keys) else np.zeros(query.shape, bool)
            vals = np.where(found, csc.data[at] if len(keys) else 0.0, 0.0)
            valid = inside[p]
            if np.count_nonzero(vals[valid]) != nonzero[internal].sum():
                return False  # synapses outside the kernel's taps
            tap = np.broadcast_to(np.arange(n_taps), valid.shape)[valid]
            chan = np.broadcast_to(ch[:, None], valid.shape)[valid]
            mine = np.zeros((n_taps, c_out))
            mine[tap, chan] = vals[valid]
            if not np.array_equal(mine[tap, chan], vals[valid]):
                return False  # compartments of one core disagree on a weight
            seen = np.zeros((n_taps, c_out), bool)
            seen[tap, chan] = True
            if not np.array_equal(kernel[seen & known], mine[seen & known]):
                return False  # cores sharing channels with different weights
            kernel[seen], known[seen] = mine[seen], True
            positions, channels = np.unique(p), np.unique(ch)
            if positions.size * channels.size != block.n_neurons:
                return False  # not a (positions x channels) tile
            cover[np.ix_(positions, channels)] += 1
        if not np.all(cover == 1):
            return False
        # cores that split channels (each with its own weight scale) keep their own
        # columns: one GEMM for the whole layer
        layer.kernel = (kernel / 2.0**layer.shift).astype(layer.gemm_dtype)
        layer.conv_shape = (oh * ow, c_out)
        layer.window = (h, w, c_in, kh, kw, stride, pad, oh, ow, source_hwc is not None)
        return True

    # ------------------------------------------------------------------ simulation

    @staticmethod
    def _patches(layer: ChipLayer, x: np.ndarray) -> np.ndarray:
        """im2col of (rows, sources) spikes: (rows * positions, taps), taps (dy, dx, c_in)."""
        h, w, c, kh, kw, stride, pad, oh, ow, channels_last = layer.window
        rows = x.shape[0]
        hp = max(pad + h, (oh - 1) * stride + kh)
        wp = max(pad + w, (ow - 1) * stride + kw)
        if c == 1:  # tap-major: one contiguous copy per tap, the GEMM reads it transposed
            plane = _padded(layer, (rows, hp, wp))
            plane[:, pad : pad + h, pad : pad + w] = x.reshape(rows, h, w)
            taps = np.empty((kh, kw, rows, oh, ow), layer.gemm_dtype)
            for dy in range(kh):
                for dx in range(kw):
                    taps[dy, dx] = plane[
                        :,
                        dy : dy + stride * (oh - 1) + 1 : stride,
                        dx : dx + stride * (ow - 1) + 1 : stride,
                    ]
            return taps.reshape(kh * kw, rows * oh * ow).T
        padded = _padded(layer, (rows, hp, wp, c))
        image = x.reshape(rows, h, w, c) if channels_last else x.reshape(rows, c, h, w)
        padded[:, pad : pad + h, pad : pad + w, :] = (
            image if channels_last else image.transpose(0, 2, 3, 1)
        )
        s0, s1, s2, s3 = padded.strides
        windows = np.lib.stride_tricks.as_strided(
            padded,
            (rows, oh, ow, kh, kw, c),
            (s0, s1 * stride, s2 * stride, s1, s2, s3),
            writeable=False,
        )
        return windows.reshape(rows * oh * ow, kh * kw * c)

    def _synaptic_input(self, layer: ChipLayer, x: np.ndarray, out: np.ndarray) -> None:
        """(rows, sources) 0/1 spikes -> exact integer input into ``out`` (rows, compartments)."""
        rows = x.shape[0]
        direct = layer.gemm_dtype == layer.dtype and not layer.shift and not layer.wrap_q
        scatter = layer.kind in ("conv", "dense") and layer.gemm_dtype == layer.dtype
        if scatter and _sparse_enough(x):
            assert out.flags.c_contiguous  # written through reshaped views
            if layer.kind == "dense":
                kernels.scatter_dense(x, layer.matrix, out)
            else:
                first, position, tap = _reach(layer)
                n_pos, c_out = layer.conv_shape
                kernels.scatter_conv(
                    x, layer.kernel, layer.window[2], layer.window[9], first, position, tap,
                    out.reshape(rows, n_pos, c_out),
                )  # fmt: skip
            if not direct:
                self._finish(layer, out, out)
            return
        if layer.kind == "conv":
            kernel = layer.kernel
            assert kernel is not None
            n_pos, c_out = layer.conv_shape
            bytes_per_row = n_pos * kernel.shape[0] * np.dtype(layer.gemm_dtype).itemsize
            step = max(1, CHUNK_BYTES // bytes_per_row)
            for r0 in range(0, rows, step):
                r1 = min(rows, r0 + step)
                patches = self._patches(layer, x[r0:r1])
                if direct:
                    np.matmul(patches, kernel, out=out[r0:r1].reshape(-1, c_out))
                else:
                    self._finish(layer, (patches @ kernel).reshape(r1 - r0, -1), out[r0:r1])
            return
        xf = x.astype(layer.gemm_dtype)
        if layer.kind == "dense":
            if direct:
                np.matmul(xf, layer.matrix, out=out)
                return
            result = xf @ layer.matrix
        else:
            result = np.asarray(layer.matrix.T @ xf.T).T  # type: ignore[attr-defined]
        self._finish(layer, result, out)

    @staticmethod
    def _finish(layer: ChipLayer, result: np.ndarray, out: np.ndarray) -> None:
        """Undo the weights' rescaling and wrap at 21 bits like ``overflow(q0)``, into out."""
        if layer.shift:
            result *= 2.0**layer.shift  # (small integer) * 2**shift: exact
        if layer.wrap_q:
            lo, hi = float(result.min()), float(result.max())
            if lo < -(2**Q_BITS) or hi >= 2**Q_BITS:
                result = result.astype(np.float64)
                wrap_float(result, Q_BITS)
                warnings.warn("Overflow in q0", stacklevel=4)
        if result is not out:
            out[...] = result

    def _forward(
        self, spikes: np.ndarray, record: Sequence[bool]
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per layer: spikes and (if ``record``) voltages, (T, faces, n) in internal order.

        A layer's synaptic input is computed a chunk of steps at a time and scanned while
        it is still in cache; the whole (T, faces, n) input is never held.
        """
        x = np.asarray(spikes)
        faces, steps = int(x.shape[0]), int(x.shape[1])
        x = x.reshape(faces, steps, -1)
        if x.shape[2] != self.n_inputs:
            raise ValueError(f"spikes of {x.shape[2]} inputs for a network of {self.n_inputs}")
        # input row k is sent at step k and arrives at step k + 1, like a layer's spike
        # (own, writable memory: a read-only batch would compile the kernels once more)
        src = np.require(x[:, : steps - 1].transpose(1, 0, 2), requirements=["C", "W"])
        src = src.reshape(-1, x.shape[2])
        out: list[tuple[np.ndarray, np.ndarray | None]] = []
        for i, (layer, rec) in enumerate(zip(self.layers, record, strict=True)):
            scan = CompartmentScan(layer, steps, faces, rec)
            scan.advance(np.zeros((1, faces, layer.n), layer.dtype))  # nothing arrives at step 0
            if steps > 1:
                # rate-coded input repeats rows (a pixel at the maximum rate spikes every
                # step): compute each distinct input row's synaptic input once
                distinct = _distinct_rows(src) if i == 0 and src.size else None
                if distinct is not None:
                    first, inverse = distinct
                    q_rows = np.empty((len(first), layer.n), layer.dtype)
                    self._synaptic_input(layer, src[first], q_rows)
                    scan.advance(q_rows, inverse.reshape(steps - 1, faces))
                    scan.finish()
                    src = scan.spikes[: steps - 1].reshape(-1, layer.n)
                    out.append((scan.spikes, scan.volts))
                    continue
                per = max(1, _chunk_rows(layer, src.shape[1]) // faces)
                buffer = np.empty((min(per, steps - 1), faces, layer.n), layer.dtype)
                for t0 in range(1, steps, per):
                    q = buffer[: min(per, steps - t0)]
                    lo, hi = (t0 - 1) * faces, (t0 - 1 + len(q)) * faces
                    if src.size:
                        self._synaptic_input(layer, src[lo:hi], q.reshape(-1, layer.n))
                    else:
                        q[...] = 0
                    scan.advance(q)
            scan.finish()
            src = scan.spikes[: steps - 1].reshape(-1, layer.n)
            out.append((scan.spikes, scan.volts))
        return out

    def simulate(self, spikes: np.ndarray, voltages: str = "output") -> LayerTrace:
        """Present a batch: bool (faces, T, ...) input spikes -> every layer's activity.

        ``voltages``: ``"output"`` records the output layer's, ``"all"`` every layer's,
        ``"none"`` none.
        """
        if voltages not in ("output", "all", "none"):
            raise ValueError(f"voltages must be 'output', 'all' or 'none', not {voltages!r}")
        last = len(self.layers) - 1
        record = [
            voltages == "all" or (voltages == "output" and i == last)
            for i in range(len(self.layers))
        ]
        spikes_out, volts_out = [], []
        for layer, (s, v) in zip(self.layers, self._forward(spikes, record), strict=True):
            order = layer.internal_of_ens
            spikes_out.append(s.transpose(1, 0, 2)[:, :, order])
            volts_out.append(
                None if v is None else v.transpose(1, 0, 2)[:, :, order].astype(np.float64)
            )
        return LayerTrace(tuple(spikes_out), tuple(volts_out))

    def run_batch(self, spikes: np.ndarray) -> list[Presentation]:
        """One :class:`~.presentation.Presentation` per face, as ``SnnRunner.run`` gives.

        ``spikes``: bool (faces, timesteps, H, W) or (faces, timesteps, C, H, W).
        """
        x = np.asarray(spikes, bool)
        if x.shape[0] == 0:
            return []
        faces, steps = int(x.shape[0]), int(x.shape[1])
        record = [i == len(self.layers) - 1 for i in range(len(self.layers))]
        result = self._forward(x, record)
        # sum spikes in the narrowest integer that holds T (a cast-free reduction)
        acc = np.uint8 if steps < 2**8 else np.uint16 if steps < 2**16 else np.int64
        counts = [
            np.add.reduce(s.view(np.uint8), axis=0, dtype=acc)[:, layer.internal_of_ens].astype(
                np.int64
            )
            for layer, (s, _) in zip(self.layers, result, strict=True)
        ]
        order = self.layers[-1].internal_of_ens
        s_out, v_out = result[-1]
        assert v_out is not None
        out_spikes = s_out.transpose(1, 0, 2)[:, :, order]
        out_volts = v_out.transpose(1, 0, 2)[:, :, order].astype(np.float64) / self.vth_out
        inputs = x.reshape(faces, steps, -1).sum(axis=1, dtype=np.int64)
        return [
            Presentation(
                output_spikes=np.ascontiguousarray(out_spikes[i]),
                output_voltage=np.ascontiguousarray(out_volts[i]),
                input_counts=inputs[i],
                layer_counts=tuple(c[i] for c in counts),
                timesteps=steps,
                output_start=0.0,
            )
            for i in range(faces)
        ]
