"""Keras weight constraints as pure projections ``w -> w`` (tf_keras definitions).

With ``norms = sqrt(sum(w**2, axis, keepdims=True))`` and ``eps = 1e-7`` (Keras's
``backend.epsilon()``):

* ``MaxNorm(max_value=2, axis=0)``: ``w * clip(norms, 0, max_value) / (eps + norms)``
* ``NonNeg()``: ``w * (w >= 0)``
* ``UnitNorm(axis=0)``: ``w / (eps + norms)``
* ``MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)``:
  ``w * (rate * clip(norms, min, max) + (1 - rate) * norms) / (eps + norms)``, with a
  ``max_value`` below ``min_value`` raised to it, as Keras's ``clip`` does.

tf_keras's ``RadialConstraint`` applies only to rank-4 convolution kernels, so it has no
GRU counterpart here.

Keras applies a constraint after each optimizer update, never in the forward pass: call
``cell.constrain(params)`` after ``optax.apply_updates``. optax's projections cover other
sets (boxes, simplices), not these norms, so they are written here.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxgru._keras_object import KerasObject, resolve

EPSILON = 1e-7


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w: jax.Array, axis) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=_axis(axis), keepdims=True))


def _max_norm(max_value=2, axis=0):
    def constrain(w):
        norms = _norms(w, axis)
        return w * (jnp.clip(norms, 0, max_value) / (EPSILON + norms))

    return constrain


def _non_neg():
    return lambda w: w * (w >= 0).astype(w.dtype)


def _unit_norm(axis=0):
    return lambda w: w / (EPSILON + _norms(w, axis))


def _min_max_norm(min_value=0.0, max_value=1.0, rate=1.0, axis=0):
    max_value = max(max_value, min_value)  # Keras's clip raises max_value to min_value

    def constrain(w):
        norms = _norms(w, axis)
        desired = rate * jnp.clip(norms, min_value, max_value) + (1 - rate) * norms
        return w * (desired / (EPSILON + norms))

    return constrain


REGISTRY: dict[str, Callable[..., Callable]] = {
    "MaxNorm": _max_norm,
    "NonNeg": _non_neg,
    "UnitNorm": _unit_norm,
    "MinMaxNorm": _min_max_norm,
}

NAMES: dict[str, tuple[str, dict]] = {
    "max_norm": ("MaxNorm", {}),
    "maxnorm": ("MaxNorm", {}),
    "non_neg": ("NonNeg", {}),
    "nonneg": ("NonNeg", {}),
    "unit_norm": ("UnitNorm", {}),
    "unitnorm": ("UnitNorm", {}),
    "min_max_norm": ("MinMaxNorm", {}),
    "minmaxnorm": ("MinMaxNorm", {}),
}


def get(identifier: Any, *, argument: str = "constraint") -> KerasObject | Callable | None:
    """Resolves a Keras constraint name/config, or keeps a ``w -> w`` callable."""
    return resolve(identifier, argument=argument, kind="constraint", registry=REGISTRY, names=NAMES)
