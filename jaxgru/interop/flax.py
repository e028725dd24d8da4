"""Flax ``GRUCell`` weights (linen params, nnx modules) <-> jaxgru params.

Flax's GRU cell (``flax.linen.GRUCell`` and ``flax.nnx.GRUCell``) computes, with
``σ = gate_fn`` (default sigmoid) and ``φ = activation_fn`` (default tanh):

    r  = σ(x W_ir + b_ir + h W_hr)
    z  = σ(x W_iz + b_iz + h W_hz)
    n  = φ(x W_in + b_in + r ⊙ (h W_hn + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h

which is Keras's ``reset_after=True`` math (``recurrent_activation=σ, activation=φ``) with
no recurrent bias on z and r. Linen stores one ``Dense`` per gate and side:

    {"ir": {"kernel": (D, U), "bias": (U,)}, "iz": {...}, "in": {...},
     "hr": {"kernel": (U, U)}, "hz": {"kernel": (U, U)}, "hn": {"kernel": (U, U), "bias": (U,)}}

and the Keras layout is, gate blocks [z, r, h]:

    kernel           = [W_iz | W_ir | W_in]                  (D, 3U)
    recurrent_kernel = [W_hz | W_hr | W_hn]                  (U, 3U)
    bias             = [[b_iz | b_ir | b_in], [0 | 0 | b_hn]] (2, 3U)

so `from_flax_linen` is exact. Keras's recurrent z and r biases have no place in Flax:
`to_flax_linen` adds them to the input biases, ``b_iz = bias[0]_z + bias[1]_z`` (likewise
r), which computes the same function up to one float rounding of that sum (bitwise the
same where the recurrent z/r bias is zero, as in every `from_flax_linen` result).

``nnx.GRUCell`` holds fused ``Linear`` layers: ``dense_i`` (kernel ``(D, 3U)`` with bias
``(3U,)``) and ``dense_h`` (kernel ``(U, 3U)``), blocks in [r, z, n] order. Its
``dense_h`` has no bias, so it computes the math above with ``b_hn = 0``, which
`from_flax_nnx` writes as a zero recurrent bias: exact. (A ``dense_h`` bias, should a
Flax version have one, is taken as Keras's recurrent bias row.)

The activations are no part of linen params: `from_flax_linen` takes them as arguments
(default sigmoid/tanh, Flax's defaults), and `from_flax_nnx` reads the module's
``gate_fn``/``activation_fn``. A callable that is the very function behind a Keras name
(``jax.nn.sigmoid`` is ``"sigmoid"``, ``jnp.tanh`` is ``"tanh"``, ...) becomes that name;
any other callable is kept as it is.

Flax is never imported here: params are plain mappings and modules are read by their
attribute names. Arrays keep their dtype and never alias the source's buffers. Called on
concrete arrays the converters return numpy arrays; inside `jax.jit` or `jax.vmap` (traced
weights, e.g. a network initialised inside a vmapped ``train``) they return `jax.Array` s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxgru._core.cell import GRUCell
from jaxgru._core.validation import shown_keys
from jaxgru._keras_objects import activations
from jaxgru.interop._layout import (
    array_module,
    as_weight,
    contiguous,
    fold_bias,
    from_torch_layout,
    is_traced,
    to_torch_layout,
)
from jaxgru.types import Params

__all__ = ["from_flax_linen", "from_flax_nnx", "to_flax_linen"]

# linen's Dense names (in Flax's [r, z, n] order within each side) and their weights.
_LINEN_WEIGHTS = {"ir": ("kernel", "bias"), "iz": ("kernel", "bias"), "in": ("kernel", "bias"),
                  "hr": ("kernel",), "hz": ("kernel",), "hn": ("kernel", "bias")}


def _keras_activation(fn: activations.ActivationLike, argument: str) -> activations.ActivationLike:
    """A Keras name for ``fn`` where one names that very function, else ``fn`` itself."""
    fn = activations.validate(fn, argument=argument)
    if callable(fn):
        for name, known in activations.ACTIVATIONS.items():
            if known is fn:
                return name
    return fn


def _unwrap(params: Any) -> tuple[Mapping, str]:
    """The GRUCell's own dict and its path, from it or single-entry wrappers around it."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params: expected a mapping of linen GRUCell params, got {type(params).__name__}.")
    path = "params"
    while len(params) == 1:
        ((key, inner),) = params.items()
        if key in _LINEN_WEIGHTS or not isinstance(inner, Mapping):
            break
        params, path = inner, f"{path}[{key!r}]"
    return params, path


def _shape_text(name: str, weight: str) -> str:
    return {("i", "kernel"): "(input_dim, units)", ("h", "kernel"): "(units, units)"}.get(
        (name[0], weight), "(units,)")


def from_flax_linen(params: Mapping[str, Any], *, gate_fn: activations.ActivationLike = "sigmoid",
                    activation_fn: activations.ActivationLike = "tanh") -> tuple[GRUCell, Params]:
    """A jaxgru cell and params computing what ``flax.linen.GRUCell`` computes with ``params``.

    Args:
      params: the cell's params ``{"ir": {"kernel", "bias"}, "iz": ..., "in": ...,
        "hr": {"kernel"}, "hz": {"kernel"}, "hn": {"kernel", "bias"}}``, or a variables
        dict around them with single-entry wrappers, as ``nn.GRUCell(U).init(...)``
        (``{"params": {...}}``) or ``nn.RNN(nn.GRUCell(U)).init(...)``
        (``{"params": {"cell": {...}}}``) returns.
      gate_fn: the module's ``gate_fn`` (params do not record it): a Keras name or a
        callable; Flax's default is sigmoid.
      activation_fn: the module's ``activation_fn`` (params do not record it): a Keras
        name or a callable; Flax's default is tanh.

    Returns:
      ``(jaxgru.GRUCell(U, activation=activation_fn, recurrent_activation=gate_fn,
      reset_after=True), params)`` with params in Keras's layout (numpy; `jax.Array` s
      when traced): bias ``(2, 3U)``, its recurrent z and r entries zero.

    Raises:
      TypeError: for a non-mapping, a non-array or non-float weight, or weights of
        different dtypes. ValueError: for a missing weight, unexpected keys
        or shapes that do not agree; each names the weight.
    """
    recurrent_activation = _keras_activation(gate_fn, "gate_fn")
    activation = _keras_activation(activation_fn, "activation_fn")
    inner, path = _unwrap(params)
    traced = is_traced(inner)
    extra = set(inner) - set(_LINEN_WEIGHTS)
    if extra:
        raise ValueError(f"{path}: unexpected keys {shown_keys(extra)}; a flax.linen.GRUCell has "
                         f"{list(_LINEN_WEIGHTS)}.")
    arrays: dict[tuple[str, str], Any] = {}
    for name, weights in _LINEN_WEIGHTS.items():
        if name not in inner:
            expected = {w: _shape_text(name, w) for w in weights}
            raise ValueError(f"{path}: missing {name!r}; expected {expected}.")
        if not isinstance(inner[name], Mapping):
            raise TypeError(f"{path}[{name!r}]: expected a mapping {{'kernel', ...}}, got "
                            f"{type(inner[name]).__name__}.")
        extra = set(inner[name]) - set(weights)
        if extra:
            raise ValueError(f"{path}[{name!r}]: unexpected keys {shown_keys(extra)}; a flax.linen.GRUCell's "
                             f"{name!r} has {list(weights)}.")
        for weight in weights:
            label = f"{path}[{name!r}][{weight!r}]"
            if weight not in inner[name]:
                raise ValueError(f"{label}: missing; expected shape {_shape_text(name, weight)}.")
            arrays[name, weight] = as_weight(inner[name][weight], label, traced)
    first = arrays["ir", "kernel"]
    if first.ndim != 2 or 0 in first.shape:
        raise ValueError(f"{path}['ir']['kernel']: expected shape (input_dim, units) with both > 0, got {first.shape}.")
    input_dim, units = first.shape
    for (name, weight), array in arrays.items():
        shape = {"kernel": (input_dim if name[0] == "i" else units, units), "bias": (units,)}[weight]
        label = f"{path}[{name!r}][{weight!r}]"
        if array.shape != shape:
            raise ValueError(f"{label}: expected shape {shape} for input_dim={input_dim}, units={units} "
                             f"(from {path}['ir']['kernel']), got {array.shape}.")
        if array.dtype != first.dtype:
            raise TypeError(f"{label}: dtype {array.dtype}, but {path}['ir']['kernel'] is {first.dtype}; "
                            "a GRUCell's weights share one dtype.")

    xp = array_module(first)

    def side(prefix: str, weight: str) -> Any:  # Flax's [r, z, n] blocks side by side
        return xp.concatenate([arrays[prefix + gate, weight] for gate in "rzn"], axis=-1)

    zeros = xp.zeros(2 * units, first.dtype)
    keras = from_torch_layout(side("i", "kernel").T, side("h", "kernel").T, side("i", "bias"),
                              xp.concatenate([zeros, arrays["hn", "bias"]]))
    cell = GRUCell(units, activation=activation, recurrent_activation=recurrent_activation, reset_after=True)
    return cell, keras


def to_flax_linen(params: Mapping[str, Any], cell: GRUCell | None = None) -> dict[str, dict[str, Any]]:
    """``flax.linen.GRUCell`` params from jaxgru params of the reset_after=True convention.

    Keras's recurrent z and r biases are added to Flax's input biases ``b_iz``, ``b_ir``
    (the same function up to one float rounding of each sum); bias-free params get
    Flax's biases as zeros (exact).

    Args:
      params: ``{"kernel", "recurrent_kernel"[, "bias"]}`` with bias ``(2, 3U)``.
      cell: the jaxgru cell of the params; needed for bias-free params
        (``jaxgru.GRUCell(U, use_bias=False, reset_after=True)``), else optional, and
        the params must fit it.

    Returns:
      ``{"ir": {"kernel", "bias"}, ..., "hn": {"kernel", "bias"}}`` numpy arrays in the
      params' dtype (`jax.Array` s when traced, inside `jax.jit` / `jax.vmap`): the cell's
      own dict, to be wrapped as the module is used:
      ``nn.GRUCell(U).apply({"params": p}, ...)``, ``nn.RNN(nn.GRUCell(U)).apply({"params":
      {"cell": p}}, ...)``. Build the module with ``gate_fn=cell.recurrent_activation_fn,
      activation_fn=cell.activation_fn`` for a cell with other activations than sigmoid
      and tanh.

    Raises:
      ValueError: for reset_after=False params (bias ``(3U,)`` or ``cell.reset_after``
        False), which no Flax GRUCell computes, and for bias-free params without ``cell``.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = to_torch_layout(params, cell, "flax.linen.GRUCell")
    units = weight_hh.shape[1]
    xp = array_module(weight_ih)
    if bias_ih is None:
        bias_ih = bias_hh = xp.zeros(3 * units, weight_ih.dtype)
    biases = {"r": fold_bias(bias_ih[:units], bias_hh[:units]), "z": fold_bias(bias_ih[units:2 * units],
                                                                       bias_hh[units:2 * units]),
              "n": bias_ih[2 * units:]}
    out: dict[str, dict[str, Any]] = {}
    for k, gate in enumerate("rzn"):
        out["i" + gate] = {"kernel": contiguous(weight_ih[k * units:(k + 1) * units].T),
                           "bias": xp.array(biases[gate])}
    for k, gate in enumerate("rzn"):
        out["h" + gate] = {"kernel": contiguous(weight_hh[k * units:(k + 1) * units].T)}
    out["hn"]["bias"] = xp.array(bias_hh[2 * units:])
    return out


def _nnx_array(module: Any, path: str, required: bool, traced: bool) -> Any:
    """The array at ``module.<path>`` (a Flax ``Param`` or an array), or None where it is None."""
    value = module
    for part in path.split("."):
        if not hasattr(value, part):
            if required:
                raise TypeError(f"cell: expected a flax.nnx.GRUCell (with {path}), got {type(module).__name__}"
                                f"{'; for linen params use from_flax_linen' if isinstance(module, Mapping) else ''}.")
            return None
        value = getattr(value, part)
    if value is None:
        return None
    return as_weight(value, f"cell.{path}", traced)


def from_flax_nnx(cell: Any) -> tuple[GRUCell, Params]:
    """A jaxgru cell and params computing what a ``flax.nnx.GRUCell`` computes.

    Args:
      cell: an ``nnx.GRUCell`` instance (read by duck typing: ``dense_i.kernel (D, 3U)``,
        ``dense_i.bias (3U,)``, ``dense_h.kernel (U, 3U)``, ``dense_h.bias`` (None in the
        Flax GRUCell), ``gate_fn``, ``activation_fn``).

    Returns:
      ``(jaxgru.GRUCell(U, activation=..., recurrent_activation=..., reset_after=True),
      params)``: the activations as Keras names where the module's functions are those
      behind a name, else the callables; params in Keras's layout (numpy; `jax.Array` s
      when the module's weights are traced, inside `nnx.jit` / `jax.vmap`), bias
      ``(2, 3U)`` with the recurrent row zero when ``dense_h`` has no bias (exact).
    """
    for name in ("gate_fn", "activation_fn"):
        if not hasattr(cell, name):
            raise TypeError(f"cell: expected a flax.nnx.GRUCell (with {name}), got {type(cell).__name__}"
                            f"{'; for linen params use from_flax_linen' if isinstance(cell, Mapping) else ''}.")
    recurrent_activation = _keras_activation(cell.gate_fn, "cell.gate_fn")
    activation = _keras_activation(cell.activation_fn, "cell.activation_fn")
    traced = is_traced(cell)
    kernel = _nnx_array(cell, "dense_i.kernel", True, traced)
    recurrent = _nnx_array(cell, "dense_h.kernel", True, traced)
    if recurrent is None:
        raise TypeError("cell.dense_h.kernel: expected an array, got None.")
    if recurrent.ndim != 2 or recurrent.shape[0] == 0 or recurrent.shape[1] != 3 * recurrent.shape[0]:
        raise ValueError(f"cell.dense_h.kernel: expected shape (units, 3*units) with units > 0, got {recurrent.shape}.")
    units = recurrent.shape[0]
    if kernel is None:
        raise TypeError("cell.dense_i.kernel: expected an array, got None.")
    if kernel.ndim != 2 or kernel.shape[0] == 0 or kernel.shape[1] != 3 * units:
        raise ValueError(f"cell.dense_i.kernel: expected shape (input_dim, {3 * units}) for units={units} "
                         f"(from cell.dense_h.kernel), got {kernel.shape}.")
    biases = {}
    for path in ("dense_i.bias", "dense_h.bias"):
        bias = _nnx_array(cell, path, False, traced)
        if bias is not None and bias.shape != (3 * units,):
            raise ValueError(f"cell.{path}: expected shape {(3 * units,)} for units={units}, got {bias.shape}.")
        biases[path] = bias
    for label, array in (("cell.dense_h.kernel", recurrent), *((f"cell.{p}", b) for p, b in biases.items())):
        if array is not None and array.dtype != kernel.dtype:
            raise TypeError(f"{label}: dtype {array.dtype}, but cell.dense_i.kernel is {kernel.dtype}; "
                            "a GRUCell's weights share one dtype.")
    use_bias = any(b is not None for b in biases.values())
    if use_bias:
        xp = array_module(kernel)
        biases = {p: xp.zeros(3 * units, kernel.dtype) if b is None else b for p, b in biases.items()}
    params = from_torch_layout(kernel.T, recurrent.T, biases["dense_i.bias"], biases["dense_h.bias"])
    jaxgru_cell = GRUCell(units, activation=activation, recurrent_activation=recurrent_activation,
                          use_bias=use_bias, reset_after=True)
    return jaxgru_cell, params
