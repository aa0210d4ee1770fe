"""Loihi-aware training of the Loihi CNN in PyTorch (NengoDL's LoihiSpikingRectifiedLinear
method without TensorFlow) and its conversion to an SNN parameter file.

Three stages (:func:`train_loihi_aware`): a CNN whose ReLUs are Loihi's rate staircase (or
an ordinary CNN, normalised afterwards); batchnorm folded into the conv weights and a
neuron bias per channel; spike-in-the-loop fine-tuning of the folded, 8-bit quantised
network on an integer-exact replica of nengo-loihi's emulator. :func:`to_snn_params` then
writes the file the loihi backend runs, and the card (:mod:`.card`) is evaluated in
nengo-loihi's emulator. Everything is in threshold units (see :mod:`.neuron`), so what is
trained is what runs; no data-based normalisation is needed afterwards.

Modules:

* :mod:`.neuron`: units, Loihi's IF neuron as an activation (:class:`LoihiRate`);
* :mod:`.folded`: the folded on-chip network (:class:`FoldedNet`), its quantisation and
  the conversion to and from :class:`~fer_ros.snn.params.SnnParams` through the
  converter's own helpers (:mod:`fer_ros.snn.convert`);
* :mod:`.simulate`: float and integer-exact simulations in torch (the latter on
  :mod:`fer_ros.snn.emulator.integers`), and :func:`emulator_predict` on nengo-loihi;
* :mod:`.train`: :class:`AwareSettings` (the one set of defaults) and the training stages;
* :mod:`.card`: hold-out, CV of CNN and SNN, files and model card (``run_card``,
  ``cross_validate_snn``, ``search_objective``, ``save_stage1``); imports the export
  tool chain (ONNX), so it is not imported here;
* :mod:`.cli`: ``python -m fer_ros.training.loihi_aware`` (defaults from
  :class:`AwareSettings`).
"""

from __future__ import annotations

from fer_ros.training.loihi_aware.folded import (
    FoldedLayer,
    FoldedNet,
    block_shapes_of,
    fold_avgpool_into_conv,
    fold_model,
    from_snn_params,
    normalise,
    quantise_weights,
    to_snn_params,
)
from fer_ros.training.loihi_aware.neuron import (
    DT,
    INPUT_DELAY,
    MAX_RATE,
    VMIN,
    LoihiRate,
    layer_windows,
    loihi_cnn,
    set_mode,
    smooth_rate,
    smooth_window,
    staircase,
)
from fer_ros.training.loihi_aware.simulate import (
    EmulatorResult,
    IntLayer,
    discretise,
    emulator_predict,
    encode_rate,
    modelled_energy,
    predict_rate,
    predict_sim,
    simulate,
    simulate_exact,
)
from fer_ros.training.loihi_aware.train import (
    AwareModel,
    AwareSettings,
    finetune_rate,
    finetune_spiking,
    load_aware,
    load_stage1,
    shift_logits,
    train_loihi_aware,
    train_rate,
)

__all__ = [
    "DT",
    "INPUT_DELAY",
    "MAX_RATE",
    "VMIN",
    "AwareModel",
    "AwareSettings",
    "EmulatorResult",
    "FoldedLayer",
    "FoldedNet",
    "IntLayer",
    "LoihiRate",
    "block_shapes_of",
    "discretise",
    "emulator_predict",
    "encode_rate",
    "finetune_rate",
    "finetune_spiking",
    "fold_avgpool_into_conv",
    "fold_model",
    "from_snn_params",
    "layer_windows",
    "load_aware",
    "load_stage1",
    "loihi_cnn",
    "modelled_energy",
    "normalise",
    "predict_rate",
    "predict_sim",
    "quantise_weights",
    "set_mode",
    "shift_logits",
    "simulate",
    "simulate_exact",
    "smooth_rate",
    "smooth_window",
    "staircase",
    "to_snn_params",
    "train_loihi_aware",
    "train_rate",
]
