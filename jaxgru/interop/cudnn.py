"""cuDNN's canonical flat GRU weights <-> jaxgru params.

cuDNN's GRU is the ``reset_after=True`` math with gate blocks [r, z, h]. Its canonical
parameter buffer (what Keras's GPU path builds for ``CudnnRNNV3`` and what PyTorch's
flattened ``nn.GRU`` weights hold) is one 1-D array of ``3U (D + U + 2)`` values:

    W_r, W_z, W_h, U_r, U_z, U_h, bi_r, bi_z, bi_h, br_r, br_z, br_h

each weight block transposed to ``(U, D)`` / ``(U, U)`` and flattened row-major, i.e. the
PyTorch arrays ``weight_ih, weight_hh, bias_ih, bias_hh`` flattened and concatenated. One
buffer holds one layer and one direction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru._core.validation import check_positive_int
from jaxgru.interop._layout import as_numpy, check_fixed_activations, from_torch_layout, to_torch_layout
from jaxgru.types import Params

__all__ = ["from_cudnn", "to_cudnn"]


def to_cudnn(params: Mapping[str, Any], *, cell: GRUCell | None = None) -> np.ndarray:
    """The canonical cuDNN buffer ``(3U (D + U + 2),)`` of reset_after=True params.

    cuDNN always has both biases: bias-free params (which need ``cell`` with
    ``use_bias=False, reset_after=True`` to state their convention) get zero biases,
    which compute the same function. reset_after=False params, and a ``cell`` whose
    activations are not sigmoid and tanh, raise `ValueError`.
    """
    check_fixed_activations(cell, "cuDNN's GRU")
    weight_ih, weight_hh, bias_ih, bias_hh = to_torch_layout(params, cell, "cuDNN's GRU")
    if bias_ih is None:
        bias_ih = bias_hh = np.zeros(weight_ih.shape[0], weight_ih.dtype)
    return np.concatenate([weight_ih.ravel(), weight_hh.ravel(), bias_ih, bias_hh])


def from_cudnn(flat: Any, input_dim: int, units: int) -> Params:
    """jaxgru params for ``GRUCell(units, reset_after=True)`` from a canonical cuDNN buffer.

    Args:
      flat: 1-D array of ``3 * units * (input_dim + units + 2)`` values (numpy, JAX or torch).
      input_dim: D. units: U.

    Returns:
      numpy params: kernel ``(D, 3U)``, recurrent_kernel ``(U, 3U)``, bias ``(2, 3U)``.
    """
    input_dim = check_positive_int(input_dim, "input_dim")
    units = check_positive_int(units, "units")
    flat = as_numpy(flat, "flat")
    expected = 3 * units * (input_dim + units + 2)
    if flat.shape != (expected,):
        raise ValueError(f"flat: expected shape ({expected},) = (3*units*(input_dim + units + 2),) for "
                         f"input_dim={input_dim}, units={units}, got {flat.shape}.")
    u3 = 3 * units
    weight_ih, weight_hh, bias_ih, bias_hh = np.split(
        flat, np.cumsum([u3 * input_dim, u3 * units, u3]))
    return from_torch_layout(weight_ih.reshape(u3, input_dim), weight_hh.reshape(u3, units), bias_ih, bias_hh)
