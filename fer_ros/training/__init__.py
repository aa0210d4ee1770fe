"""Training, hardware-aware architecture search and export of the FER CNNs.

Needs the ``[train]`` extra (PyTorch, scikit-learn, Optuna, tqdm); the runtime nodes do
not import anything from here. It may use core, snn and backends.

* data: :mod:`.data` (data sets on disk), :mod:`.wild` (in-the-wild photos),
  :mod:`.augment`, :mod:`.splits` (group-disjoint splits), :mod:`.card_data` (a card's
  split rebuilt, for calibration and evaluation);
* models: :mod:`.model` (the VGG-style CNNs), :mod:`.fit` (training loop, CV),
  :mod:`.graph` (folded numpy layers), :mod:`.loihi` (Loihi mapping rules),
  :mod:`.targets` (devices and budgets), :mod:`.metrics`;
* runs: :mod:`.pipeline` (hold-out, CV, final model, exports, card), :mod:`.train` (its
  command line), :mod:`.search` (Optuna), :mod:`.card` and :mod:`.checkpoint`;
* exports: :mod:`.export` (each runtime, checked against PyTorch) with
  :mod:`.onnx_export`, :mod:`.tflite_export`, :mod:`.tflite_convert`,
  :mod:`.openvino_export`; :mod:`.reexport` (re-export a checkpoint), :mod:`.latency`,
  :mod:`.calibrate` (confidence temperature per card);
* Loihi: :mod:`.loihi_aware` (training for the chip, a package) and :mod:`.snn_convert`
  (convert a card's CNN into an SNN file).
"""
