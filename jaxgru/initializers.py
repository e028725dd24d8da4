"""Keras initializers as ``init(key, shape, dtype)`` functions on `jax.random`.

Each initializer is called as ``init(key, shape, dtype)`` on the *whole* weight, as Keras
does: glorot over the full ``(D, 3U)`` kernel, orthogonal over the full ``(U, 3U)``
recurrent kernel (rows orthonormal, not per gate). Fans are Keras's: ``(fan_in, fan_out)``
for a 2-D shape, both the size for a 1-D shape (a ``(3U,)`` bias), receptive field times
the last two dimensions above 2-D; with Keras 3's ``input_axes`` and ``output_axes`` (both
given), the products of the sizes of those axes. A Keras ``seed`` is ignored: the
randomness comes from the PRNG key, so the values differ from Keras's while following the
same distribution.

Field values (checked when the cell is built; every number finite):

* ``VarianceScaling``: ``scale > 0``, as in Keras; ``mode`` one of fan_in/fan_out/fan_avg
  (case-sensitive, as in Keras); ``distribution`` lower-cased, with ``"normal"`` meaning
  ``"truncated_normal"``, as both Keras versions read it.
* ``RandomNormal``/``TruncatedNormal``: any ``stddev``; a negative one draws the same
  distribution as its absolute value and 0 gives ``mean``, as in Keras.
* ``RandomUniform``: ``minval <= maxval``. A reversed range is rejected: tf_keras and
  Keras 3 on TensorFlow draw from ``[maxval, minval]``, Keras 3 on JAX returns ``minval``.
* ``Constant``: a finite scalar. An array value is rejected: tf_keras reshapes it to the
  weight's shape, Keras 3 broadcasts it (pass an ``init`` callable instead).
* ``Orthogonal``/``Identity``: any ``gain`` (0 gives zeros, a negative gain negates), on
  any 2-D shape (Identity: rectangular eye; Orthogonal also above 2-D, flattened to the
  last axis). Both reject a 1-D weight (a ``(3U,)`` bias) when called, as Keras does.
"""

from jaxgru._deprecations import module_getattr
from jaxgru._keras_objects.initializers import REGISTRY, get

__all__ = ["REGISTRY", "get"]

__getattr__ = module_getattr(__name__)
