"""Spiking version of the expression CNN for Intel Loihi (nengo-loihi) and Loihi 2 (Lava).

Split like nengo-loihi itself: :mod:`.params` (the converted model, on disk),
:mod:`.convert` (CNN -> params), :mod:`.builder` (params -> nengo network),
:mod:`.runner` (network -> per-face simulation with state reset), :mod:`.energy`
(activity counts -> modelled Loihi energy) and :mod:`.netx_export` (params -> Lava netx).
Importing this package does not import nengo; only the builder and runner need it.
"""
