"""`GRU`: Keras 3's ``keras.layers.GRU`` whose sequence loop is jaxgru's on the JAX backend.

Change one import and keep the rest of a Keras program:
``from jaxgru.keras import GRU`` instead of ``from keras.layers import GRU``.

`GRU` subclasses ``keras.layers.GRU``: the same constructor arguments and defaults, the
same cell and variables (``kernel (D, 3U)``, ``recurrent_kernel (U, 3U)``, ``bias (3U,)``
or ``(2, 3U)``, in that order, so ``get_weights``/``set_weights`` and weight files
interchange with ``keras.layers.GRU``), the same ``get_config``,
``compute_output_shape``, masking, ``stateful`` state variables, regularizers and
constraints. Only the loop over the ``T`` steps of an input ``(B, T, D)`` differs: on
the JAX backend it is `jaxgru.rnn` (inputs projected outside the loop, the fused
backward, every mask), computing what Keras's loop computes,
``h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ φ(x_t W_h + b_h + r_t ⊙ (h_{t-1} U_h + b'_h))``
(``reset_after=True``; ``reset_after=False`` multiplies ``r_t ⊙ h_{t-1}`` by ``U_h``
instead), with ``z_t, r_t = σ(x_t W + h_{t-1} U + b)`` and σ, φ the layer's own Keras
activations (Keras 3's, e.g. its ``hard_sigmoid`` ``relu6(x + 3) / 6``). Outputs
``(B, T, U)`` or ``(B, U)``, states ``(B, U)``, as Keras's.

Keras 3's rules are kept where they differ from tf_keras's: at a masked step before any
valid step of a row the output repeats the initial state (Keras 3's scan carries it),
except with ``unroll=True`` (zeros, Keras 3's unrolled loop) or ``zero_output_for_mask``;
with implementation 2 one input dropout mask ``(B, D)`` serves all three gates.

Dropout: ``keras.layers.GRU.call`` draws its masks once per call from the cell's
``SeedGenerator`` (``seed=``) and caches them in the cell; jaxgru's loop uses those same
masks at every step (`jaxgru.rnn`'s ``dropout_masks=``). A layer built with ``seed=s``
therefore draws the masks ``keras.layers.GRU(seed=s)`` draws, call after call.

On any other backend (TensorFlow, PyTorch) `GRU` runs Keras's own computation
unchanged. On the JAX backend every option runs on jaxgru's loop except
``use_cudnn=True`` where Keras refuses it (recurrent dropout, a mask, ``unroll`` or
``reset_after=False``): that configuration is left to Keras, which raises its own
ValueError.

`convert` turns a built Sequential or functional model's ``keras.layers.GRU`` layers,
also inside ``keras.layers.Bidirectional``, into `GRU`, weights kept. The class is
registered with Keras (``"jaxgru>GRU"``): a ``.keras`` file saved with it loads with
``keras.saving.load_model`` once ``jaxgru.keras`` is imported.

This module imports Keras 3 (``pip install 'jaxgru[keras]'``); ``import jaxgru`` does not.
"""

from jaxgru._frameworks.keras3 import GRU, convert

__all__ = ["GRU", "convert"]
