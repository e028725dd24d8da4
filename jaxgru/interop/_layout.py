"""The weight-layout helpers every converter shares: Keras-layout validation, array
conversion, the [z, r, h] <-> [r, z, h] gate swap and the (out, in) layout of PyTorch,
cuDNN, Flax and Equinox, and the checks of what a target can compute.

jaxgru params are Keras's layout (`jaxgru.types.Params`)::

    {"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)}

Converters run eagerly on concrete arrays (numpy in, numpy out) and inside `jax.jit` /
`jax.vmap` (`is_traced`): there every weight becomes a `jax.Array` (`as_weight`) and the
helpers below, which compute with `jax.numpy` on `jax.Array` inputs and with numpy
otherwise (`array_module`), return `jax.Array` s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru.types import Params

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


def as_numpy(array: Any, label: str) -> np.ndarray:
    """A fresh numpy copy of a numpy/JAX array or a torch tensor (``label`` names it in errors);
    a tensor on torch's ``meta`` device (no values) is a ValueError.

    torch is duck-typed (``.detach().cpu()``); it is imported only to read a bfloat16
    tensor's bits, which numpy cannot hold.
    """
    if getattr(array, "is_meta", False) is True:  # torch's meta device: a shape, no values
        raise ValueError(f"{label}: a tensor on the 'meta' device has a shape but no values; materialize the "
                         "weights first.")
    if hasattr(array, "detach") and hasattr(array, "cpu"):
        array = array.detach().cpu()
        if str(array.dtype) == "torch.bfloat16":
            # numpy has no bfloat16: reinterpret the bits as ml_dtypes' bfloat16 (JAX's)
            import torch

            array = array.view(torch.int16).numpy().view(jnp.bfloat16)
        else:
            array = array.numpy()  # not np.array(tensor): its __array__ path is deprecated
    return _floating(array, label, np.array)


def _floating(array: Any, label: str, convert: Callable[[Any], Any]) -> Any:
    """``convert(array)`` (numpy's or JAX's), checked to hold floating-point weights."""
    try:
        array = convert(array)
    except Exception as error:
        raise TypeError(f"{label}: expected an array, got {type(array).__name__}.") from error
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{label}: expected floating-point weights, got dtype {array.dtype}.")
    return array


def is_traced(*trees: Any) -> bool:
    """Whether any leaf of the pytrees ``trees`` is a JAX tracer (a converter called inside
    `jax.jit`, `jax.vmap`, `jax.grad`, ...)."""
    return any(isinstance(leaf, jax.core.Tracer) for tree in trees for leaf in jax.tree.leaves(tree))


def as_weight(array: Any, label: str, traced: bool) -> Any:
    """`as_numpy`, or, when ``traced`` (`is_traced`), the array as a floating `jax.Array`
    (numpy cannot hold a tracer): every weight of one conversion takes the same path."""
    return _floating(array, label, jnp.asarray) if traced else as_numpy(array, label)


def array_module(*arrays: Any) -> Any:
    """`jax.numpy` where any of ``arrays`` is a `jax.Array`, else numpy."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def contiguous(array: Any) -> Any:
    """A C-contiguous numpy array (PyTorch's ``load_state_dict`` copies any layout, but
    users index them); a `jax.Array` as it is."""
    return array if isinstance(array, jax.Array) else np.ascontiguousarray(array)


def param_label(name: str) -> str:
    return f"params[{name!r}]"


def check_keras_params(params: Mapping[str, Any],
                       label: Callable[[str], str] = param_label) -> tuple[int, int, bool | None]:
    """Validates params in Keras's layout; returns ``(input_dim, units, reset_after)``.

    ``reset_after`` is read from the bias shape, and is None without a bias. Raises
    `ValueError` for a missing weight, an unexpected key or a shape that does not agree
    with the others, naming the weight (``label(name)``) and the expected shape (as
    `jaxgru.GRUCell.check_params` does).
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}.")
    extra = set(params) - set(WEIGHT_NAMES)
    if extra:
        raise ValueError(f"params: unexpected keys {sorted(extra)}; expected {list(WEIGHT_NAMES)}.")
    for name, shape in (("kernel", "(input_dim, 3*units)"), ("recurrent_kernel", "(units, 3*units)")):
        if name not in params:
            raise ValueError(f"{label(name)}: missing; expected shape {shape}.")
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


def check_against_cell(cell: GRUCell, units: int, reset_after: bool | None, has_bias: bool) -> None:
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


def check_fixed_activations(cell: GRUCell | None, target: str) -> None:
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
    add up (z and r gates): the same function up to one float rounding per entry. NumPy
    keeps the input entries untouched where the recurrent one is 0 (so round trips stay
    exact, signed zeros included); traced arrays get the plain sum, whose gradient reaches
    both biases."""
    xp = array_module(input_bias, recurrent_bias)
    if xp is not np:  # traced: a plain sum, so that both biases get the gradient
        return input_bias + recurrent_bias
    return xp.where(recurrent_bias == 0, input_bias, input_bias + recurrent_bias)


def swap_update_reset(a: Any) -> Any:
    """Gate blocks along the last axis [z, r, h] <-> [r, z, h] (the swap is its own inverse)."""
    u = a.shape[-1] // 3
    return array_module(a).concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1)


def to_torch_layout(params: Mapping[str, Any], cell: GRUCell | None, target: str):
    """``(weight_ih, weight_hh, bias_ih | None, bias_hh | None)`` for reset_after=True params.

    ``target`` names the destination layout in the error raised for reset_after=False
    params, or for bias-free params whose convention ``cell`` does not state.
    """
    _, units, reset_after = check_keras_params(params)
    if cell is not None:
        check_against_cell(cell, units, reset_after, "bias" in params)
        reset_after = cell.reset_after
    if reset_after is None:
        raise ValueError(f"params: without a bias the arrays do not say whether they are the reset_after=True "
                         f"math that {target} computes; pass cell=jaxgru.GRUCell({units}, use_bias=False, "
                         f"reset_after=True) to confirm it.")
    if not reset_after:
        raise ValueError(f"params: these are reset_after=False weights (bias shape (3U,) or cell.reset_after=False): "
                         f"the reset gate multiplies h before the recurrent matmul, (r ⊙ h) U_h, while {target} "
                         f"computes r ⊙ (h U_h + b_hn); no weights of {target} compute the same function. "
                         f"Train or build the GRU with reset_after=True.")
    traced = is_traced(params)
    arrays = {name: as_weight(w, f"params[{name!r}]", traced) for name, w in params.items()}
    weight_ih = contiguous(swap_update_reset(arrays["kernel"]).T)
    weight_hh = contiguous(swap_update_reset(arrays["recurrent_kernel"]).T)
    if "bias" not in arrays:
        return weight_ih, weight_hh, None, None
    bias_ih, bias_hh = swap_update_reset(arrays["bias"])
    return weight_ih, weight_hh, bias_ih, bias_hh


def from_torch_layout(weight_ih: Any, weight_hh: Any, bias_ih: Any | None, bias_hh: Any | None) -> Params:
    """jaxgru params (reset_after=True layout) from arrays of validated torch shapes (both
    biases, or neither); numpy, or `jax.Array` s where any input is one."""
    xp = array_module(weight_ih, weight_hh, bias_ih, bias_hh)
    weight_ih, weight_hh = xp.asarray(weight_ih), xp.asarray(weight_hh)
    params = {"kernel": swap_update_reset(weight_ih.T), "recurrent_kernel": swap_update_reset(weight_hh.T)}
    if bias_ih is not None:
        assert bias_hh is not None  # the two biases come together
        params["bias"] = swap_update_reset(xp.stack([xp.asarray(bias_ih), xp.asarray(bias_hh)]))
    return params
