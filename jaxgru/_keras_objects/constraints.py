"""Keras weight constraints as factories of ``w -> w`` projections: the registry behind
`jaxgru.constraints` (whose docstring states the formulas and the edge values accepted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._keras_objects.base import KerasObject, axis, canonical_axes, fields, real, resolve

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
