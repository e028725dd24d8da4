"""Keyed dropout masks: the functional form of Keras's per-call mask cache.

Keras's `GRUCell` draws its dropout masks once per sequence call, caches them in the cell
and applies the same masks at every timestep. jaxgru has no cache: masks come from an
explicit PRNG key, so the same key gives the same masks.

A mask is inverted dropout applied to ones: each entry is ``0`` (probability ``rate``) or
``1 / (1 - rate)``. Keras always makes three masks of each kind, one per gate [z, r, h]:
``inputs`` of shape ``(3, B, D)`` and ``recurrent`` of shape ``(3, B, U)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["DropoutMasks", "inverted_dropout_masks"]



class DropoutMasks(NamedTuple):
    """Per-gate dropout masks; ``None`` where that kind of dropout is off.

    Attributes:
      inputs: ``(3, B, D)`` masks multiplying ``x`` for the z, r, h gates (implementation
        2 uses only ``inputs[0]``, on the fused projection).
      recurrent: ``(3, B, U)`` masks multiplying ``h`` for the z, r, h gates
        (implementation 1 only, which ``recurrent_dropout > 0`` forces).
    """

    inputs: jax.Array | None = None
    recurrent: jax.Array | None = None


def inverted_dropout_masks(key: jax.Array, rate: float, shape: tuple[int, ...], count: int = 3,
                           dtype=jnp.float32) -> jax.Array:
    """``count`` independent masks of ``shape``: entries 0 w.p. ``rate``, else ``1/(1-rate)``."""
    keep = jax.random.bernoulli(key, 1.0 - rate, (count, *shape))
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)
