"""Fast, bit-identical ways of running a built SNN on nengo-loihi's emulator.

:class:`~fer_ros.snn.runner.SnnRunner` is the facade and chooses, every path
spike-for-spike equal to nengo-loihi 1.1's own emulator:

* ``emulator="fast"`` (the loihi backend's ``loihi.emulator``, default): the layered
  emulator, :mod:`.layered`, all steps and faces of a batch a layer at a time, for the
  feedforward networks :mod:`.mirror` accepts; any other network is stepped as below (the
  reason is logged once);
* ``emulator="nengo"``: nengo-loihi's emulator stepped one face at a time, with
  :mod:`.delivery`'s vectorised spike delivery patched in unless ``fast=False`` (the
  backend's ``loihi.vectorised_delivery``), which runs it exactly as shipped.

Modules: :mod:`.integers` (Loihi's integer arithmetic: overflow wraps, decay bits,
nengo-loihi's discretisation of a block), :mod:`.synapses` (the built synapses as CSR rows
and the blocks of a layer), :mod:`.delivery` (the spike-delivery patch), :mod:`.layered`
with :mod:`.scan` (compartment dynamics), :mod:`.kernels` (its compiled loops),
:mod:`.tables` (its tables on disk) and :mod:`.mirror` (what it can mirror), and
:mod:`.presentation` (what one face did, the result of every path). Importing this
package does not import nengo.
"""
