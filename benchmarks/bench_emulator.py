"""Loihi emulation speed: nengo-loihi's emulator vs the vectorised delivery vs the layered one.

ms per face (one presentation of ``T`` steps, state reset included) on held-out CK+ crops
of the committed Canny model's split, for

* ``stock``: nengo-loihi 1.1's emulator as shipped (``emulator="nengo", fast=False``);
* ``vectorised``: the same stepping with :mod:`fer_ros.snn.emulator.delivery`'s delivery;
* ``layered``: :mod:`fer_ros.snn.emulator.layered`, batches of 1 and 5 faces (a group).

Networks: the committed ``fer_snn_loihi`` and a paper-size one (Smith et al. 2024 layout:
convolutions of 12/24/32/48 3x3 filters from 48x48, stride 1 then 2, dense 48/24/7, about
48k neurons) with random weights normalised on training crops by the converter; a layer
whose cores nengo-loihi finds over the synapse memory limit gets more, smaller cores (so
the network is the largest of that layout the builder and one chip accept). Stock and
vectorised run on a few faces only (slow); every method's readouts are checked equal to
stock's on those faces. Figures are the best of ``--repeats`` passes (the machine may be
shared). One thread, as issue #20's targets are set (BLAS limited by threadpoolctl; the
compiled loops are single-threaded)::

    python benchmarks/bench_emulator.py                 # both networks
    python benchmarks/bench_emulator.py --skip-paper    # committed SNN only
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_ros.core.cnn_spec import CnnSpec, LayerSpec  # noqa: E402
from fer_ros.core.model_card import load_model_card  # noqa: E402
from fer_ros.core.paths import data_path  # noqa: E402
from fer_ros.core.spike_encoding import EncodingSettings, encode  # noqa: E402
from fer_ros.snn.convert import convert  # noqa: E402
from fer_ros.snn.params import SnnParams, load_snn_params  # noqa: E402
from fer_ros.snn.runner import SnnRunner  # noqa: E402
from fer_ros.training.card_data import calibration_subset, card_split  # noqa: E402

PAPER_CONVS = ((12, 1), (24, 2), (32, 2), (48, 2))  # (filters, stride), 3x3, padding 1
PAPER_DENSE = (48, 24, 7)


def paper_spec(seed: int = 0) -> CnnSpec:
    """The paper's layout with He-initialised random weights."""
    rng = np.random.default_rng(seed)
    layers, c = [], 1
    for filters, stride in PAPER_CONVS:
        w = rng.normal(0, math.sqrt(2 / (9 * c)), (filters, c, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.05, filters).astype(np.float32)
        layers.append(LayerSpec("conv", w, b, stride=stride, padding=1))
        c = filters
    n = c * 6 * 6
    for i, m in enumerate(PAPER_DENSE):
        w = rng.normal(0, math.sqrt(2 / n), (m, n)).astype(np.float32)
        b = rng.normal(0, 0.05, m).astype(np.float32)
        last = i == len(PAPER_DENSE) - 1
        layers.append(LayerSpec("dense", w, b, activation="none" if last else "relu"))
        n = m
    return CnnSpec((1, 48, 48), tuple(layers))


def buildable(params: SnnParams, **kwargs: object) -> tuple[SnnParams, SnnRunner]:
    """A runner for ``params``; layers over a core's synapse memory get smaller cores."""
    from nengo.exceptions import BuildError

    while True:
        try:
            return params, SnnRunner(params, target="sim", **kwargs)
        except BuildError as exc:
            found = re.search(
                r"Ensemble '([^']+)'.*synapse bits \((\d+)\) exceeded max \((\d+)", str(exc)
            )
            if not found:
                raise
            name, bits, limit = found.group(1), int(found.group(2)), int(found.group(3))
            layers = []
            for layer in params.layers:
                if layer.name == name:
                    shape = list(layer.block_shape)
                    axis = int(np.argmax(shape))
                    shape[axis] = max(1, math.floor(shape[axis] * limit / bits / 1.05))
                    layer = dataclasses.replace(layer, block_shape=tuple(shape))
                layers.append(layer)
            params = dataclasses.replace(params, layers=tuple(layers))


def per_face(run: object, batches: list[np.ndarray], repeats: int) -> float:
    """Best ms per face over ``repeats`` passes through ``batches``."""
    best = math.inf
    faces = sum(len(b) for b in batches)
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            run(batch)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - start) / faces)
    return best * 1e3


def bench(label: str, params: SnnParams, trains: np.ndarray, args: argparse.Namespace) -> None:
    stock_faces = trains[: args.stock_faces]
    vec_faces = trains[: args.vectorised_faces]
    params, layered = buildable(params)
    stock = SnnRunner(params, target="sim", emulator="nengo", fast=False)
    vectorised = SnnRunner(params, target="sim", emulator="nengo", fast=True)
    try:
        assert layered.emulator == "fast", "the layered emulator declined this network"
        reference = [stock.run(t) for t in stock_faces]
        for runner in (vectorised, layered):
            for want, got in zip(reference, runner.run_batch(stock_faces), strict=True):
                np.testing.assert_array_equal(got.output_voltage, want.output_voltage)
                for a, b in zip(got.layer_counts, want.layer_counts, strict=True):
                    np.testing.assert_array_equal(a, b)
        t_stock = per_face(lambda b: [stock.run(t) for t in b], [stock_faces], 1)
        t_vec = per_face(lambda b: [vectorised.run(t) for t in b], [vec_faces], args.repeats)
        t_layer = {
            size: per_face(
                layered.run_batch,
                [trains[i : i + size] for i in range(0, len(trains) - size + 1, size)],
                args.repeats,
            )
            for size in (1, 5)
        }
    finally:
        for runner in (stock, vectorised, layered):
            runner.close()
    neurons = sum(layer.n_neurons for layer in params.layers)
    print(
        f"| {label} | {neurons} | {params.n_cores} | {trains.shape[1]} | {t_stock:.0f} | "
        f"{t_vec:.1f} | {t_layer[1]:.2f} | {t_layer[5]:.2f} | "
        f"{t_stock / t_layer[1]:.0f}x / {t_stock / t_layer[5]:.0f}x |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", default="fer_snn_loihi.json")
    parser.add_argument("--data", type=Path, default=data_path())
    parser.add_argument("--faces", type=int, default=40, help="held-out faces for layered")
    parser.add_argument("--stock-faces", type=int, default=3)
    parser.add_argument("--vectorised-faces", type=int, default=10)
    parser.add_argument("--paper-stock-faces", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-paper", action="store_true")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    logging.getLogger("nengo_loihi").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="nengo_loihi")
    warnings.filterwarnings("ignore", message="This version of `nengo_loihi`")

    card = load_model_card(args.card)
    train, held_out = card_split(card, args.data)
    params = load_snn_params(card.file("snn"))
    settings = EncodingSettings("rate", params.timesteps, params.dt, params.input_rate)
    trains = np.stack([encode(x[0], settings) for x in held_out.x[: args.faces]])
    print(
        "| network | neurons | cores | T | stock ms/face | vectorised ms/face | "
        "layered ms/face (batch 1) | layered (batch 5) | speed-up vs stock (1 / 5) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    bench(card.model_id, params, trains, args)
    if not args.skip_paper:
        paper = convert(
            paper_spec(),
            calibration_subset(train, 64),
            "paper_size",
            max_rate=params.max_rate,
            input_rate=params.input_rate,
            timesteps=params.timesteps,
        )
        args.stock_faces = args.paper_stock_faces
        args.vectorised_faces = max(args.paper_stock_faces, 2)
        bench("paper-size (random weights)", paper, trains, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
