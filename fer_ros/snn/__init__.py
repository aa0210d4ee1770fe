"""Spiking version of the expression CNN for Intel Loihi (nengo-loihi) and Loihi 2 (Lava).

Split like nengo-loihi itself (a build product, runners, a facade):

* :mod:`.params`: the converted model on disk (``<id>_snn.npz``);
* :mod:`.reference`: numpy forward pass of a CnnSpec (calibration, agreement);
* :mod:`.convert`: CNN -> params by data-based normalisation, and the helpers Loihi-aware
  training shares (block shapes, output integrator, assembly, the card's ``snn`` section);
* :mod:`.neurons` and :mod:`.builder`: params -> nengo network for nengo-loihi;
* :mod:`.runner`: the facade, one presentation per face with state reset, on the emulator
  or hardware; :mod:`.emulator`: its fast, bit-identical emulator paths and Loihi's
  integer arithmetic;
* :mod:`.activity` and :mod:`.energy`: activity counts -> modelled Loihi energy (or
  NxSDK's measured energy on hardware);
* :mod:`.evaluate`: SNN against its CNN on labelled crops;
* :mod:`.netx_export`: params -> Lava netx (Loihi 2).

Converting a model card (which rebuilds its training split) is
:mod:`fer_ros.training.snn_convert`: nothing here imports the training package. Importing
this package does not import nengo; only the builder and runner need it.
"""
