"""Equinox ``eqx.nn.GRUCell`` <-> jaxgru params.

``eqx.nn.GRUCell`` works on unbatched vectors, weights stored (out, in) with gate blocks in
[r, z, n] order, and computes:

    r  = σ(W_ir x + b_r + W_hr h)
    z  = σ(W_iz x + b_z + W_hz h)
    n  = tanh(W_in x + b_n + r ⊙ (W_hn h + bias_n))
    h' = n + z ⊙ (h − n)                 (= z ⊙ h + (1 − z) ⊙ n)

with ``weight_ih (3U, D)``, ``weight_hh (3U, U)``, ``bias (3U,)`` and ``bias_n (U,)``
(both None with ``use_bias=False``). That is Keras's ``reset_after=True`` math with
sigmoid and tanh and no recurrent bias on z and r:

    kernel           = weight_ih.T with blocks [z, r, n]        (D, 3U)
    recurrent_kernel = weight_hh.T with blocks [z, r, n]        (U, 3U)
    bias             = [[b_z | b_r | b_n], [0 | 0 | bias_n]]    (2, 3U)

so `from_equinox` is exact. `to_equinox` adds Keras's recurrent z and r biases to ``bias``
(the same function up to one float rounding of each sum; bitwise the same where they are
zero, as in every `from_equinox` result); Keras's recurrent h bias is ``bias_n``. A
``reset_after=False`` cell, or activations other than sigmoid/tanh, have no Equinox
counterpart and are refused.

Equinox is imported only by `to_equinox`; `from_equinox` reads the module's fields. Both
run inside `jax.jit` / `jax.vmap` (e.g. on a module initialised inside a vmapped
``train``): `from_equinox` then returns `jax.Array` params (numpy otherwise), and
`to_equinox` always holds `jax.Array` s.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._core.cell import GRUCell
from jaxgru.interop._layout import (
    array_module,
    as_weight,
    check_fixed_activations,
    fold_bias,
    from_torch_layout,
    is_traced,
    to_torch_layout,
)
from jaxgru.types import Params

__all__ = ["from_equinox", "to_equinox"]

_TARGET = "equinox.nn.GRUCell"
_FIELDS = ("weight_ih", "weight_hh", "bias", "bias_n")


def _fields(cell: Any) -> list[Any]:
    """``weight_ih, weight_hh, bias, bias_n`` as numpy arrays, or `jax.Array` s when traced
    (None where the field is None)."""
    missing = [name for name in _FIELDS if not hasattr(cell, name)]
    if missing:
        raise TypeError(f"cell: expected an equinox.nn.GRUCell (with fields {', '.join(_FIELDS)}), "
                        f"got {type(cell).__name__} without {', '.join(map(repr, missing))}.")
    traced = is_traced([getattr(cell, name) for name in _FIELDS])
    return [None if getattr(cell, name) is None else as_weight(getattr(cell, name), f"cell.{name}", traced)
            for name in _FIELDS]


def from_equinox(cell: Any) -> tuple[GRUCell, Params]:
    """A jaxgru cell and params computing what an ``eqx.nn.GRUCell`` computes.

    Args:
      cell: an ``eqx.nn.GRUCell`` (read by its fields ``weight_ih (3U, D)``,
        ``weight_hh (3U, U)``, ``bias (3U,)``, ``bias_n (U,)``; the biases None for
        ``use_bias=False``).

    Returns:
      ``(jaxgru.GRUCell(U, use_bias=cell.use_bias, reset_after=True), params)``: params
      in Keras's layout (numpy; `jax.Array` s when traced), bias ``(2, 3U)`` with ``[0 | 0 | bias_n]`` as the
      recurrent row. `jaxgru.rnn` runs them batched over ``(B, T, D)`` where Equinox's
      cell takes one ``(D,)`` step.

    Raises:
      TypeError: for an object without those fields or non-float arrays. ValueError: for
        shapes that do not agree, or one bias without the other; each names the field.
    """
    weight_ih, weight_hh, bias, bias_n = _fields(cell)
    if weight_ih is None or weight_hh is None:
        raise TypeError(f"cell.{'weight_ih' if weight_ih is None else 'weight_hh'}: expected an array, got None.")
    if weight_hh.ndim != 2 or weight_hh.shape[1] == 0 or weight_hh.shape[0] != 3 * weight_hh.shape[1]:
        raise ValueError(f"cell.weight_hh: expected shape (3*hidden_size, hidden_size) with hidden_size > 0, "
                         f"got {weight_hh.shape}.")
    units = weight_hh.shape[1]
    if weight_ih.ndim != 2 or weight_ih.shape[1] == 0 or weight_ih.shape[0] != 3 * units:
        raise ValueError(f"cell.weight_ih: expected shape ({3 * units}, input_size) for hidden_size={units} "
                         f"(from cell.weight_hh), got {weight_ih.shape}.")
    if (bias is None) != (bias_n is None):
        raise ValueError(f"cell.{'bias' if bias is None else 'bias_n'}: None while "
                         f"cell.{'bias_n' if bias is None else 'bias'} is an array; an equinox GRUCell has both "
                         "biases (use_bias=True) or neither.")
    use_bias = bias is not None
    if use_bias != bool(getattr(cell, "use_bias", use_bias)):
        raise ValueError(f"cell.use_bias: {cell.use_bias}, but cell.bias is {'an array' if use_bias else 'None'}.")
    arrays = [("weight_hh", weight_hh)]
    if bias is not None and bias_n is not None:  # use_bias (both biases or neither, checked above)
        for name, array, shape in (("bias", bias, (3 * units,)), ("bias_n", bias_n, (units,))):
            if array.shape != shape:
                raise ValueError(f"cell.{name}: expected shape {shape} for hidden_size={units}, got {array.shape}.")
            arrays.append((name, array))
    for name, array in arrays:
        if array.dtype != weight_ih.dtype:
            raise TypeError(f"cell.{name}: dtype {array.dtype}, but cell.weight_ih is {weight_ih.dtype}; "
                            "a GRUCell's arrays share one dtype.")
    xp = array_module(weight_ih)
    bias_hh = xp.concatenate([xp.zeros(2 * units, bias_n.dtype), bias_n]) if bias_n is not None else None
    params = from_torch_layout(weight_ih, weight_hh, bias, bias_hh)
    return GRUCell(units, use_bias=use_bias, reset_after=True), params


def to_equinox(params: Any, cell: GRUCell | None = None):
    """An ``eqx.nn.GRUCell`` computing what jaxgru computes with ``cell`` and ``params``.

    Args:
      params: reset_after=True params ``{"kernel", "recurrent_kernel"[, "bias" (2, 3U)]}``.
      cell: the jaxgru cell of the params; needed for bias-free params
        (``jaxgru.GRUCell(U, use_bias=False, reset_after=True)``), else optional, and the
        params must fit it.

    Returns:
      ``eqx.nn.GRUCell(D, U, use_bias=...)`` holding the converted weights as JAX arrays
      in the params' dtype (float64 needs ``jax_enable_x64``); Keras's recurrent z/r bias
      is folded into ``bias``.

    Raises:
      ValueError: for reset_after=False params (bias ``(3U,)`` or ``cell.reset_after``
        False), bias-free params without ``cell``, or a ``cell`` whose
        ``recurrent_activation`` is not sigmoid or ``activation`` not tanh: Equinox's GRU
        has those fixed.
    """
    check_fixed_activations(cell, _TARGET)
    weight_ih, weight_hh, bias_ih, bias_hh = to_torch_layout(params, cell, _TARGET)
    import equinox as eqx

    units, input_dim = weight_hh.shape[1], weight_ih.shape[1]
    dtype = jnp.asarray(weight_ih[:0]).dtype  # the dtype JAX holds it in
    # The module's structure without drawing its random initial weights, all replaced below.
    module = eqx.filter_eval_shape(lambda: eqx.nn.GRUCell(input_dim, units, use_bias=bias_ih is not None,
                                                          dtype=dtype, key=jax.random.key(0)))
    arrays = [weight_ih, weight_hh]
    if bias_ih is not None:
        folded = fold_bias(bias_ih[:2 * units], bias_hh[:2 * units])
        arrays += [array_module(bias_ih).concatenate([folded, bias_ih[2 * units:]]), bias_hh[2 * units:]]
    where = ((lambda m: (m.weight_ih, m.weight_hh, m.bias, m.bias_n)) if bias_ih is not None
             else (lambda m: (m.weight_ih, m.weight_hh)))
    return eqx.tree_at(where, module, tuple(jnp.asarray(a, dtype) for a in arrays))
