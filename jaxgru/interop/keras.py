"""Keras ``layer.get_weights()`` lists <-> jaxgru params.

jaxgru params are Keras's own layout, so this is validation and naming, not reshuffling::

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

from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru.cell import GRUCell

Params = dict[str, np.ndarray]
WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


def as_numpy(array: Any, label: str) -> np.ndarray:
    """A fresh numpy copy of a numpy/JAX array or a torch tensor (``label`` names it in errors).

    torch is duck-typed (``.detach().cpu()``) so that jaxgru never imports it.
    """
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu()
        if str(array.dtype) == "torch.bfloat16":
            # numpy has no bfloat16: reinterpret the bits as ml_dtypes' bfloat16 (JAX's)
            import torch

            array = array.view(torch.int16).numpy().view(jnp.bfloat16)
        else:
            array = array.numpy()  # not np.array(tensor): its __array__ path is deprecated
    try:
        array = np.array(array)
    except Exception as error:
        raise TypeError(f"{label}: expected an array, got {type(array).__name__}.") from error
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{label}: expected floating-point weights, got dtype {array.dtype}.")
    return array


def _param_label(name: str) -> str:
    return f"params[{name!r}]"


def check_keras_params(params: Mapping[str, Any],
                       label: Callable[[str], str] = _param_label) -> tuple[int, int, Optional[bool]]:
    """Validates params in Keras's layout; returns ``(input_dim, units, reset_after)``.

    ``reset_after`` is read from the bias shape, and is None without a bias. Raises
    `KeyError` for a missing weight and `ValueError` for a shape that does not agree
    with the others, naming the weight (``label(name)``) and the expected shape.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}.")
    extra = set(params) - set(WEIGHT_NAMES)
    if extra:
        raise ValueError(f"params: unexpected keys {sorted(extra)}; expected {list(WEIGHT_NAMES)}.")
    for name, shape in (("kernel", "(input_dim, 3*units)"), ("recurrent_kernel", "(units, 3*units)")):
        if name not in params:
            raise KeyError(f"{label(name)}: missing; expected shape {shape}.")
    recurrent = tuple(np.shape(params["recurrent_kernel"]))
    if len(recurrent) != 2 or recurrent[0] == 0 or recurrent[1] != 3 * recurrent[0]:
        raise ValueError(f"{label('recurrent_kernel')}: expected shape (units, 3*units) with units > 0, "
                         f"got {recurrent}.")
    units = recurrent[0]
    kernel = tuple(np.shape(params["kernel"]))
    if len(kernel) != 2 or kernel[0] == 0 or kernel[1] != 3 * units:
        raise ValueError(f"{label('kernel')}: expected shape (input_dim, {3 * units}) for units={units} "
                         f"(from the recurrent kernel), got {kernel}.")
    if "bias" not in params:
        return kernel[0], units, None
    bias = tuple(np.shape(params["bias"]))
    if bias not in ((3 * units,), (2, 3 * units)):
        raise ValueError(f"{label('bias')}: expected shape {(3 * units,)} (reset_after=False) or "
                         f"{(2, 3 * units)} (reset_after=True) for units={units}, got {bias}.")
    return kernel[0], units, len(bias) == 2


def check_against_cell(cell: GRUCell, units: int, reset_after: Optional[bool], has_bias: bool) -> None:
    """Raises `ValueError` unless the converted weights fit ``cell``."""
    if not isinstance(cell, GRUCell):
        raise TypeError(f"cell: expected a jaxgru.GRUCell, got {type(cell).__name__}.")
    if cell.units != units:
        raise ValueError(f"cell: the weights have units={units}, cell.units={cell.units}.")
    if cell.use_bias != has_bias:
        raise ValueError(f"cell: the weights {'have' if has_bias else 'have no'} bias, "
                         f"cell.use_bias={cell.use_bias}.")
    if reset_after is not None and cell.reset_after != reset_after:
        raise ValueError(f"cell: the bias shape is the reset_after={reset_after} layout "
                         f"({'(2, 3U)' if reset_after else '(3U,)'}), cell.reset_after={cell.reset_after}.")


def check_fixed_activations(cell: Optional[GRUCell], target: str) -> None:
    """Raises `ValueError` unless ``cell`` (when given) has sigmoid gates and a tanh
    candidate, the only activations ``target`` (PyTorch, cuDNN, Equinox, Haiku) applies."""
    if not isinstance(cell, GRUCell):
        return  # no cell, or a wrong type that `check_against_cell` names
    for name, fn, expected, function in (("recurrent_activation", cell.recurrent_activation_fn, "sigmoid",
                                          jax.nn.sigmoid),
                                         ("activation", cell.activation_fn, "tanh", jnp.tanh)):
        if fn is not function:
            raise ValueError(f"cell.{name}: {getattr(cell, name)!r}, but {target} always applies {expected}; "
                             f"only a cell with {name}={expected!r} converts.")


def fold_bias(input_bias: np.ndarray, recurrent_bias: np.ndarray) -> np.ndarray:
    """``input_bias + recurrent_bias`` for a target with one bias where Keras has two that
    add up (z and r gates): the same function up to one float rounding per entry, and the
    input entries untouched where the recurrent one is 0 (so round trips stay exact)."""
    return np.where(recurrent_bias == 0, input_bias, input_bias + recurrent_bias)


def from_keras(weights: Sequence[Any], cell: Optional[GRUCell] = None) -> Params:
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
              for i, (name, w) in enumerate(zip(WEIGHT_NAMES, weights))}
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
    return [as_numpy(params[name], _param_label(name)) for name in WEIGHT_NAMES if name in params]
