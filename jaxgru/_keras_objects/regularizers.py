"""Keras weight regularizers as factories of ``w -> scalar`` functions: the registry behind
`jaxgru.regularizers` (whose docstring states the formulas and the factors accepted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._keras_objects.base import KerasObject, choice, fields, real, resolve

__all__ = ["NAMES", "REGISTRY", "get"]

_FACTOR = real(0, none_is_default=True)


@fields(l1=_FACTOR, l2=_FACTOR)
def _l1l2(l1=0.0, l2=0.0):
    def regularize(w: jax.Array) -> jax.Array:
        return l1 * jnp.sum(jnp.abs(w)) + l2 * jnp.sum(jnp.square(w))

    return regularize


@fields(l1=_FACTOR)
def _l1(l1=0.01):
    return _l1l2(l1=l1)


@fields(l2=_FACTOR)
def _l2(l2=0.01):
    return _l1l2(l2=l2)


@fields(factor=_FACTOR, mode=choice("rows", "columns"))
def _orthogonal(factor=0.01, mode="rows"):
    def regularize(w: jax.Array) -> jax.Array:
        if w.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer needs a 2-D weight, got shape {w.shape}")
        vectors = w if mode == "rows" else w.T
        # tf.math.l2_normalize: x / sqrt(max(sum(x**2), 1e-12))
        vectors = vectors * jax.lax.rsqrt(jnp.maximum(jnp.sum(vectors**2, axis=1, keepdims=True), 1e-12))
        size = vectors.shape[0]
        product = (vectors @ vectors.T) * (1.0 - jnp.eye(size, dtype=w.dtype))
        return factor * 0.5 * jnp.sum(jnp.abs(product)) / (size * (size - 1.0) / 2.0)

    return regularize


REGISTRY: dict[str, Callable[..., Callable]] = {
    "L1L2": _l1l2,
    "L1": _l1,
    "L2": _l2,
    "OrthogonalRegularizer": _orthogonal,
}

NAMES: dict[str, tuple[str, dict]] = {
    "l1": ("L1", {}),
    "l2": ("L2", {}),
    "l1_l2": ("L1L2", {"l1": 0.01, "l2": 0.01}),
    "orthogonal_regularizer": ("OrthogonalRegularizer", {}),
}


def get(identifier: Any, *, argument: str = "regularizer") -> KerasObject | Callable | None:
    """Resolves a Keras regularizer name/config, or keeps a ``w -> scalar`` callable."""
    return resolve(identifier, argument=argument, kind="regularizer", registry=REGISTRY, names=NAMES)
