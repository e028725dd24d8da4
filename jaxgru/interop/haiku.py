"""Haiku ``hk.GRU`` params <-> jaxgru params.

``hk.GRU`` stores ``w_i (D, 3U)``, ``w_h (U, 3U)`` and ``b (3U,)`` with gate blocks in
[z, r, a] order and computes:

    z  = σ(x W_iz + h W_hz + b_z)
    r  = σ(x W_ir + h W_hr + b_r)
    a  = tanh(x W_ia + (r ⊙ h) W_ha + b_a)
    h' = (1 − z) ⊙ h + z ⊙ a

This is Keras's ``reset_after=False`` math (reset before the recurrent matmul, one bias),
except that the update gate weighs the other term. Since ``σ(−v) = 1 − σ(v)``, Keras's
gate is Haiku's with its pre-activation negated:

    kernel           = [−W_iz | W_ir | W_ia]      (D, 3U)
    recurrent_kernel = [−W_hz | W_hr | W_ha]      (U, 3U)
    bias             = [−b_z  | b_r  | b_a ]      (3U,)

Negation is exact, so both directions are exact and ``to_haiku(from_haiku(p))`` is ``p``
bitwise (the computed gates agree up to the rounding of ``σ(−v)`` against ``1 − σ(v)``).
The identity holds for the sigmoid only, which is also what Haiku applies: `to_haiku`
refuses a ``recurrent_activation`` other than sigmoid, an ``activation`` other than tanh,
and ``reset_after=True`` params (bias ``(2, 3U)``), naming the offending argument.

Haiku keys params by module path (``{"gru": {"w_i", "w_h", "b"}}`` for ``hk.GRU(U)`` in
``hk.transform``); Haiku is never imported here. Concrete arrays in, numpy out; traced
arrays in (inside `jax.jit` / `jax.vmap`), `jax.Array` s out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxgru._core.cell import GRUCell
from jaxgru._core.validation import shown_keys
from jaxgru.interop._layout import (
    array_module,
    as_weight,
    check_against_cell,
    check_fixed_activations,
    check_keras_params,
    is_traced,
)
from jaxgru.types import Params

__all__ = ["from_haiku", "to_haiku"]

_NAMES = ("w_i", "w_h", "b")
_SHAPES = {"w_i": "(input_dim, 3*hidden_size)", "w_h": "(hidden_size, 3*hidden_size)", "b": "(3*hidden_size,)"}


def _negate_update(a: Any) -> Any:
    """A copy with the first gate block (the update gate) of the last axis negated."""
    units = a.shape[-1] // 3
    return array_module(a).concatenate([-a[..., :units], a[..., units:]], axis=-1)


def _module_params(params: Any) -> tuple[Mapping, str]:
    """The GRU's own ``{"w_i", "w_h", "b"}`` dict and its label, from it or ``{module: it}``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params: expected a mapping of hk.GRU params, got {type(params).__name__}.")
    if set(params) & set(_NAMES) or not params:
        return params, "params"
    if len(params) != 1:
        raise ValueError(f"params: expected one hk.GRU's params ({{'w_i', 'w_h', 'b'}} or {{module_name: {{...}}}}), "
                         f"got {len(params)} modules {shown_keys(params)}; pass params[name] of the GRU.")
    ((name, inner),) = params.items()
    if not isinstance(inner, Mapping):
        raise TypeError(f"params[{name!r}]: expected a mapping {{'w_i', 'w_h', 'b'}}, got {type(inner).__name__}.")
    return inner, f"params[{name!r}]"


def from_haiku(params: Mapping[str, Any]) -> tuple[GRUCell, Params]:
    """A jaxgru cell and params computing what ``hk.GRU`` computes with ``params``.

    Args:
      params: the GRU's ``{"w_i": (D, 3U), "w_h": (U, 3U), "b": (3U,)}``, or a params
        dict holding one module, ``{"gru": {...}}`` as ``hk.transform(...).init`` returns
        for a function using one ``hk.GRU`` (any module name).

    Returns:
      ``(jaxgru.GRUCell(U, reset_after=False), params)``: numpy params in Keras's layout
      (bias ``(3U,)``) with the update-gate columns negated; exact.

    Raises:
      TypeError: for a non-mapping or non-float arrays.
      ValueError: for a missing array, unexpected keys, several modules, or shapes that
        do not agree; each names the argument.
    """
    inner, label = _module_params(params)
    extra = set(inner) - set(_NAMES)
    if extra:
        raise ValueError(f"{label}: unexpected keys {shown_keys(extra)}; an hk.GRU has {list(_NAMES)}.")
    arrays = {}
    traced = is_traced(inner)
    for name in _NAMES:
        if name not in inner:
            raise ValueError(f"{label}: missing {name!r}; expected shape {_SHAPES[name]}.")
        arrays[name] = as_weight(inner[name], f"{label}[{name!r}]", traced)
    w_h = arrays["w_h"]
    if w_h.ndim != 2 or w_h.shape[0] == 0 or w_h.shape[1] != 3 * w_h.shape[0]:
        raise ValueError(f"{label}['w_h']: expected shape {_SHAPES['w_h']} with hidden_size > 0, got {w_h.shape}.")
    units = w_h.shape[0]
    w_i = arrays["w_i"]
    if w_i.ndim != 2 or w_i.shape[0] == 0 or w_i.shape[1] != 3 * units:
        raise ValueError(f"{label}['w_i']: expected shape (input_dim, {3 * units}) for hidden_size={units} "
                         f"(from {label}['w_h']), got {w_i.shape}.")
    if arrays["b"].shape != (3 * units,):
        raise ValueError(f"{label}['b']: expected shape {(3 * units,)} for hidden_size={units}, "
                         f"got {arrays['b'].shape}.")
    for name in ("w_h", "b"):
        if arrays[name].dtype != w_i.dtype:
            raise TypeError(f"{label}[{name!r}]: dtype {arrays[name].dtype}, but {label}['w_i'] is {w_i.dtype}; "
                            "an hk.GRU's params share one dtype.")
    keras = {"kernel": _negate_update(w_i), "recurrent_kernel": _negate_update(w_h),
             "bias": _negate_update(arrays["b"])}
    return GRUCell(units, reset_after=False), keras


def to_haiku(params: Mapping[str, Any], cell: GRUCell | None = None, *,
             name: str | None = "gru") -> dict[str, Any]:
    """``hk.GRU`` params from jaxgru params of the reset_after=False convention.

    Args:
      params: ``{"kernel", "recurrent_kernel"[, "bias" (3U,)]}``.
      cell: the jaxgru cell of the params; needed for bias-free params
        (``jaxgru.GRUCell(U, use_bias=False, reset_after=False)``; Haiku's ``b`` is then
        zeros), else optional, and the params must fit it.
      name: the module path to key the arrays by (``"gru"``, ``hk.GRU``'s default name);
        None returns the GRU's own ``{"w_i", "w_h", "b"}`` dict.

    Returns:
      ``{name: {"w_i": (D, 3U), "w_h": (U, 3U), "b": (3U,)}}`` numpy arrays in the params'
      dtype, ready for ``hk.transform(f).apply``.

    Raises:
      ValueError: for reset_after=True params (bias ``(2, 3U)`` or ``cell.reset_after``),
        bias-free params without ``cell``, and a ``cell`` whose ``recurrent_activation``
        is not sigmoid (the update-gate flip needs ``σ(−v) = 1 − σ(v)``, and Haiku applies
        sigmoid) or whose ``activation`` is not tanh.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name: expected a module name (str) or None, got {type(name).__name__}.")
    _, units, reset_after = check_keras_params(params)
    if cell is not None:
        check_against_cell(cell, units, reset_after, "bias" in params)
        check_fixed_activations(cell, "hk.GRU")  # its update-gate flip needs sigmoid(-v) = 1 - sigmoid(v)
        reset_after = cell.reset_after
    if reset_after is None:
        raise ValueError(f"params: without a bias the arrays do not say whether they are the reset_after=False "
                         f"math that hk.GRU computes; pass cell=jaxgru.GRUCell({units}, use_bias=False, "
                         "reset_after=False) to confirm it.")
    if reset_after:
        raise ValueError("params: these are reset_after=True weights (bias shape (2, 3U) or cell.reset_after=True): "
                         "the reset gate multiplies the recurrent matmul's result, r ⊙ (h U_h + b_rh), while hk.GRU "
                         "computes (r ⊙ h) W_ha; no hk.GRU weights compute the same function. Train or build the "
                         "GRU with reset_after=False.")
    traced = is_traced(params)
    kernel = as_weight(params["kernel"], "params['kernel']", traced)
    recurrent = as_weight(params["recurrent_kernel"], "params['recurrent_kernel']", traced)
    bias = (_negate_update(as_weight(params["bias"], "params['bias']", traced)) if "bias" in params
            else array_module(kernel).zeros(3 * units, kernel.dtype))
    inner = {"w_i": _negate_update(kernel), "w_h": _negate_update(recurrent), "b": bias}
    return inner if name is None else {name: inner}
