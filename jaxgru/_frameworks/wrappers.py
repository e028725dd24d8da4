"""What the Flax modules of `jaxgru.linen` and `jaxgru.nnx` share.

Imports neither, so each loads only its own. Shapes: inputs
``(*batch, T, D)`` (``(T, *batch, D)`` time-major), at least ``(T, D)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._core.cell import GRUCell
from jaxgru._core.validation import check_bool, check_unroll

__all__ = ["CELL_OPTIONS", "LAYER_FLAGS", "check_layer_options", "check_sequence", "promote_dtype"]

# The jaxgru.GRUCell options that the modules take as attributes (all but `units`).
CELL_OPTIONS = tuple(f.name for f in dataclasses.fields(GRUCell) if f.name != "units")
# A GRU layer's boolean options (Keras's names); `unroll` is the remaining layer option.
LAYER_FLAGS = ("return_sequences", "return_state", "go_backwards", "zero_output_for_mask", "time_major")


def check_layer_options(options: Mapping[str, Any]) -> None:
    """Validates a layer's `LAYER_FLAGS` (real bools) and ``unroll``."""
    for name in LAYER_FLAGS:
        check_bool(options[name], name)
    check_unroll(options["unroll"])


def check_sequence(inputs: Any, time_major: bool) -> jax.Array:
    """``inputs`` as an array of at least ``(T, D)``, else a ValueError naming the layout."""
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 2:
        layout = "(T, *batch, D)" if time_major else "(*batch, T, D)"
        raise ValueError(f"inputs: expected {layout} with any number of batch axes (at least (T, D)), "
                         f"got shape {inputs.shape}.")
    return inputs


def promote_dtype(inputs: jax.Array, params: Any, dtype: Any | None) -> tuple[jax.Array, Any]:
    """Casts ``inputs`` and every weight in the pytree ``params`` to ``dtype``, or, when
    None, to their common floating dtype (integers promote to float32).

    The rule of Flax's ``flax.linen.dtypes.promote_dtype``, restated in a few lines so that
    this module imports no Flax."""
    weights, treedef = jax.tree.flatten(params)
    if dtype is None:
        dtype = jnp.result_type(inputs, *weights)
        if not jnp.issubdtype(dtype, jnp.inexact):
            dtype = jnp.promote_types(jnp.float32, dtype)
    elif not jnp.issubdtype(dtype, jnp.inexact):
        raise ValueError(f"dtype: expected a floating dtype, got {dtype}.")
    return jnp.asarray(inputs, dtype), jax.tree.unflatten(treedef, [jnp.asarray(w, dtype) for w in weights])
