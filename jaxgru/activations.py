"""Keras activation names resolved to `jax.nn` functions.

Every name follows tf_keras's definition. Three of them differ from the obvious JAX call:

* ``hard_sigmoid`` is tf_keras's ``clip(0.2 x + 0.5, 0, 1)``. Keras 3 and
  `jax.nn.hard_sigmoid` use ``relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)`` instead; pass
  ``jax.nn.hard_sigmoid`` as a callable to get that one.
* ``gelu`` is the exact (erf) GELU, tf_keras's default, not `jax.nn.gelu`'s tanh
  approximation.
* ``leaky_relu`` is TensorFlow's, slope 0.2 (`jax.nn.leaky_relu` defaults to 0.01).

``softmax`` and ``log_softmax`` act over the last axis (the U units), as Keras's do.
``relu6`` is Keras 3's (tf_keras has no such name).
"""

from jaxgru._deprecations import module_getattr
from jaxgru._keras_objects.activations import (
    ActivationLike,
    get,
    hard_sigmoid,
    linear,
)

__all__ = ["ActivationLike", "get", "hard_sigmoid", "linear"]

__getattr__ = module_getattr(__name__)
