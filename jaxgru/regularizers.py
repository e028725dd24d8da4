"""Keras weight regularizers as pure functions ``w -> scalar`` (tf_keras definitions).

* ``L1(l1)``: ``l1 * sum(|w|)``; ``L2(l2)``: ``l2 * sum(w**2)`` (no 1/2);
  ``L1L2(l1, l2)``: their sum.
* String names use Keras's defaults: ``"l1"`` = L1(0.01), ``"l2"`` = L2(0.01),
  ``"l1_l2"`` = L1L2(0.01, 0.01) (the class itself defaults to 0, 0).
* ``OrthogonalRegularizer(factor=0.01, mode="rows")``: ``factor / 2`` times the mean
  absolute off-diagonal cosine similarity between rows (or columns); 2-D weights only.

Factors must be finite numbers, as tf_keras requires.

optax has no regularizer objects (it decays weights in the update instead), so these are
written here. Add ``cell.penalty(params)`` to the loss to apply them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxgru._keras_object import KerasObject, resolve


def _check_factor(value) -> None:
    # tf_keras rejects the same values (a NaN factor would make the loss NaN).
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"a regularization factor must be a finite number, got {value!r}")


def _l1l2(l1=0.0, l2=0.0):
    _check_factor(l1)
    _check_factor(l2)

    def regularize(w: jax.Array) -> jax.Array:
        return l1 * jnp.sum(jnp.abs(w)) + l2 * jnp.sum(jnp.square(w))

    return regularize


def _orthogonal(factor=0.01, mode="rows"):
    _check_factor(factor)
    if mode not in ("rows", "columns"):
        raise ValueError(f"mode must be 'rows' or 'columns', got {mode!r}")

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
    "L1": lambda l1=0.01: _l1l2(l1=l1),
    "L2": lambda l2=0.01: _l1l2(l2=l2),
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
