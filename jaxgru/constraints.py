"""Keras weight constraints as pure projections ``w -> w`` (tf_keras definitions).

With ``norms = sqrt(sum(w**2, axis, keepdims=True))`` and ``eps = 1e-7`` (Keras's
``backend.epsilon()``):

* ``MaxNorm(max_value=2, axis=0)``: ``w * clip(norms, 0, max_value) / (eps + norms)``
* ``NonNeg()``: ``w * (w >= 0)``
* ``UnitNorm(axis=0)``: ``w / (eps + norms)``
* ``MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)``:
  ``w * (rate * clip(norms, min, max) + (1 - rate) * norms) / (eps + norms)``

Edge values (checked when the cell is built; every number finite, see `_keras_object`).
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

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._keras_object import KerasObject, axis, canonical_axes, fields, real, resolve

__all__ = ["NAMES", "REGISTRY", "get"]

EPSILON = 1e-7
_NORM_BOUND = real(0)  # a bound on a norm: no norm is below 0


def _norms(w: jax.Array, axes) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=canonical_axes(axes, w.ndim), keepdims=True))


@fields(max_value=_NORM_BOUND, axis=axis)
def _max_norm(max_value=2, axis=0):
    def constrain(w):
        norms = _norms(w, axis)
        return w * (jnp.clip(norms, 0, max_value) / (EPSILON + norms))

    return constrain


@fields()
def _non_neg():
    return lambda w: w * (w >= 0).astype(w.dtype)


@fields(axis=axis)
def _unit_norm(axis=0):
    return lambda w: w / (EPSILON + _norms(w, axis))


@fields(min_value=real(), max_value=_NORM_BOUND, rate=real(), axis=axis)
def _min_max_norm(min_value=0.0, max_value=1.0, rate=1.0, axis=0):
    if min_value > max_value:
        raise ValueError(f"min_value ({min_value:g}) must be <= max_value ({max_value:g}): Keras's backends "
                         "disagree on a reversed range")

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
