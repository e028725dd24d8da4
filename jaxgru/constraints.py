"""Keras weight constraints as pure projections ``w -> w`` (tf_keras definitions).

With ``norms = sqrt(sum(w**2, axis, keepdims=True))`` and ``eps = 1e-7`` (Keras's
``backend.epsilon()``):

* ``MaxNorm(max_value=2, axis=0)``: ``w * clip(norms, 0, max_value) / (eps + norms)``
* ``NonNeg()``: ``w * (w >= 0)``
* ``UnitNorm(axis=0)``: ``w / (eps + norms)``
* ``MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)``:
  ``w * (rate * clip(norms, min, max) + (1 - rate) * norms) / (eps + norms)``

Edge values (checked when the cell is built; every number finite).
Those accepted compute what tf_keras and Keras 3 (TensorFlow and JAX backends) all
compute; those rejected are ones where they disagree, or that bound a norm below 0:

* ``axis``: an int, a list of ints (``[]`` takes each entry's absolute value as its norm),
  or None (one norm over the whole weight). An axis beyond the weight's rank, or one
  listed twice, is an error when the constraint is applied, as in Keras.
* An all-zero column stays zero; ``max_value=0`` gives zeros.
* ``max_value < 0`` is rejected (MaxNorm and MinMaxNorm): no norm is below 0. For MaxNorm
  the backends disagree (tf_keras and Keras 3 on TensorFlow give zeros, Keras 3 on JAX
  flips the sign of each column); MinMaxNorm(-2, -1) flips the columns in all of them.
* ``min_value > max_value`` is rejected: tf_keras and Keras 3 on TensorFlow clip to
  ``min_value``, Keras 3 on JAX to ``max_value``. A negative ``min_value`` acts as 0.
* ``rate``: any finite number; 0 leaves the norms as they are, and outside [0, 1] the
  formula extrapolates (e.g. ``rate=2`` overshoots the bound), as in Keras.

tf_keras's ``RadialConstraint`` applies only to rank-4 convolution kernels, so it has no
GRU counterpart here.

Keras applies a constraint after each optimizer update, never in the forward pass: call
``cell.constrain(params)`` after ``optax.apply_updates``. optax's projections cover other
sets (boxes, simplices), not these norms, so they are written here.
"""

from jaxgru._deprecations import module_getattr
from jaxgru._keras_objects.constraints import REGISTRY, get

__all__ = ["REGISTRY", "get"]

__getattr__ = module_getattr(__name__)
