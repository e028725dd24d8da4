"""Keras ``layer.get_weights()`` lists <-> jaxgru params.

jaxgru params are Keras's own layout, so this is validation and naming, not reshuffling:

    {"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)}

with gate blocks [z, r, h] along the last axis. The bias shape is the convention:
``(3U,)`` is ``reset_after=False`` (one input-side bias), ``(2, 3U)`` is
``reset_after=True`` (row 0 input bias, row 1 recurrent bias). Without a bias
(``use_bias=False``) the arrays do not say which convention they were trained with.

Converted params are fresh numpy arrays in the dtype they came in (they never alias the
caller's buffers, and float64 stays float64 whether or not JAX runs with x64); jaxgru
functions take them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru.interop._layout import WEIGHT_NAMES, as_numpy, check_against_cell, check_keras_params, param_label
from jaxgru.types import Params

__all__ = ["from_keras", "to_keras"]


def from_keras(weights: Sequence[Any], cell: GRUCell | None = None) -> Params:
    """jaxgru params from a Keras GRU/GRUCell's ``get_weights()``.

    Args:
      weights: ``[kernel (D, 3U), recurrent_kernel (U, 3U), bias]`` with bias ``(3U,)``
        (reset_after=False) or ``(2, 3U)`` (reset_after=True), or
        ``[kernel, recurrent_kernel]`` for ``use_bias=False``.
      cell: when given, the weights must fit it (units, use_bias, and the reset_after
        convention read from the bias shape), else `ValueError`.

    Returns:
      ``{"kernel", "recurrent_kernel"[, "bias"]}`` numpy arrays (copies, dtype kept).
    """
    if not isinstance(weights, (list, tuple)) or len(weights) not in (2, 3):
        raise ValueError("weights: expected a list [kernel, recurrent_kernel, bias] or [kernel, recurrent_kernel] "
                         f"as Keras's get_weights() returns, got {type(weights).__name__}"
                         f"{f' of length {len(weights)}' if isinstance(weights, (list, tuple)) else ''}.")
    params = {name: as_numpy(w, f"weights[{i}] ({name})")
              for i, (name, w) in enumerate(zip(WEIGHT_NAMES[:len(weights)], weights, strict=True))}
    _, units, reset_after = check_keras_params(
        params, lambda name: f"weights[{WEIGHT_NAMES.index(name)}] ({name})")
    if cell is not None:
        check_against_cell(cell, units, reset_after, "bias" in params)
    return params


def to_keras(params: Mapping[str, Any]) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel(, bias)]`` numpy arrays for Keras's ``layer.set_weights``.

    The Keras layer must have the same ``use_bias`` and, with a bias, the ``reset_after``
    that the bias shape says.
    """
    check_keras_params(params)
    return [as_numpy(params[name], param_label(name)) for name in WEIGHT_NAMES if name in params]
