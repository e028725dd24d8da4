"""PyTorch ``nn.GRU`` state dicts <-> jaxgru params.

``nn.GRU`` computes the ``reset_after=True`` math (``n = tanh(x W_in + b_in + r ⊙ (h W_hn +
b_hn))``) with gate blocks in [r, z, n] order and weights stored (out, in)::

    weight_ih_l{k}[_reverse] (3U, D)   = [W_r; W_z; W_h]ᵀ of Keras's kernel (D, 3U)
    weight_hh_l{k}[_reverse] (3U, U)   = the same for the recurrent kernel (U, 3U)
    bias_ih_l{k}[_reverse]   (3U,)     = Keras bias[0] with blocks [r, z, h]
    bias_hh_l{k}[_reverse]   (3U,)     = Keras bias[1] with blocks [r, z, h]

so converting swaps the z and r blocks and transposes. A ``reset_after=False`` GRU applies
the reset gate before the recurrent matmul, which no PyTorch GRU computes: it has no exact
conversion, and `to_torch` refuses it.

torch is never imported here: tensors are read by duck typing (``.detach().cpu()``).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from jaxgru.cell import GRUCell
from jaxgru.validation import check_bool, check_int
from jaxgru.interop.keras import Params, as_numpy, check_against_cell, check_keras_params


def swap_update_reset(a: np.ndarray) -> np.ndarray:
    """Gate blocks along the last axis [z, r, h] <-> [r, z, h] (the swap is its own inverse)."""
    u = a.shape[-1] // 3
    return np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1)


def to_torch_layout(params: Mapping[str, Any], cell: Optional[GRUCell], target: str):
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
    arrays = {name: as_numpy(w, f"params[{name!r}]") for name, w in params.items()}
    weight_ih = np.ascontiguousarray(swap_update_reset(arrays["kernel"]).T)
    weight_hh = np.ascontiguousarray(swap_update_reset(arrays["recurrent_kernel"]).T)
    if "bias" not in arrays:
        return weight_ih, weight_hh, None, None
    bias_ih, bias_hh = swap_update_reset(arrays["bias"])
    return weight_ih, weight_hh, bias_ih, bias_hh


def from_torch_layout(weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: Optional[np.ndarray],
                      bias_hh: Optional[np.ndarray]) -> Params:
    """jaxgru params (reset_after=True layout) from arrays of validated torch shapes."""
    params = {"kernel": swap_update_reset(weight_ih.T), "recurrent_kernel": swap_update_reset(weight_hh.T)}
    if bias_ih is not None:
        params["bias"] = swap_update_reset(np.stack([bias_ih, bias_hh]))
    return params


def _check_index(layer: Any, reverse: Any) -> tuple[int, bool]:
    if check_int(layer, "layer") < 0:
        raise ValueError(f"layer: expected a non-negative integer, got {layer!r}.")
    return int(layer), check_bool(reverse, "reverse")


def _keys(layer: int, reverse: bool) -> dict[str, str]:
    suffix = f"_l{layer}{'_reverse' if reverse else ''}"
    return {kind: kind + suffix for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def from_torch(state_dict: Mapping[str, Any], *, layer: int = 0, reverse: bool = False) -> Params:
    """jaxgru params of one layer and direction of a PyTorch ``nn.GRU``.

    Args:
      state_dict: ``module.state_dict()`` of an ``nn.GRU`` (torch tensors or numpy
        arrays), with keys ``weight_ih_l{layer}``, ``weight_hh_l{layer}`` and, unless the
        module has ``bias=False``, ``bias_ih_l{layer}``, ``bias_hh_l{layer}`` (suffix
        ``_reverse`` for the backward direction). Other keys are ignored.
      layer: the layer index k. reverse: the backward direction of a bidirectional GRU.

    Returns:
      numpy params for ``jaxgru.GRUCell(U, reset_after=True)`` (``use_bias=False`` when
      the module has no bias): kernel ``(D, 3U)``, recurrent_kernel ``(U, 3U)``, bias
      ``(2, 3U)``. A bidirectional stack is ``{"forward": from_torch(sd, layer=k),
      "backward": from_torch(sd, layer=k, reverse=True)}`` per layer for
      `jaxgru.bidirectional` (``merge_mode="concat"`` feeding the next layer).
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping such as nn.GRU.state_dict(), got {type(state_dict).__name__}.")
    layer, reverse = _check_index(layer, reverse)
    keys = _keys(layer, reverse)
    if keys["weight_ih"] not in state_dict:
        raise KeyError(f"state_dict: missing {keys['weight_ih']!r} of shape (3*hidden_size, input_size) "
                       f"(layer={layer}, reverse={reverse}); present keys: {sorted(state_dict)}.")
    weight_ih = as_numpy(state_dict[keys["weight_ih"]], keys["weight_ih"])
    if weight_ih.ndim != 2 or weight_ih.shape[0] == 0 or weight_ih.shape[0] % 3 or weight_ih.shape[1] == 0:
        raise ValueError(f"state_dict[{keys['weight_ih']!r}]: expected shape (3*hidden_size, input_size), "
                         f"got {weight_ih.shape}.")
    units = weight_ih.shape[0] // 3
    expected = {"weight_hh": (3 * units, units), "bias_ih": (3 * units,), "bias_hh": (3 * units,)}
    has_bias = keys["bias_ih"] in state_dict or keys["bias_hh"] in state_dict
    arrays = {"weight_ih": weight_ih, "bias_ih": None, "bias_hh": None}
    for kind, shape in expected.items():
        if kind.startswith("bias") and not has_bias:
            continue
        if keys[kind] not in state_dict:
            raise KeyError(f"state_dict: missing {keys[kind]!r} of shape {shape} (hidden_size={units} from "
                           f"{keys['weight_ih']!r}).")
        arrays[kind] = as_numpy(state_dict[keys[kind]], keys[kind])
        if arrays[kind].shape != shape:
            raise ValueError(f"state_dict[{keys[kind]!r}]: expected shape {shape} for hidden_size={units} "
                             f"(from {keys['weight_ih']!r}), got {arrays[kind].shape}.")
    return from_torch_layout(**arrays)


def to_torch(params: Mapping[str, Any], *, layer: int = 0, reverse: bool = False,
             cell: Optional[GRUCell] = None) -> dict[str, np.ndarray]:
    """One layer and direction of an ``nn.GRU`` state dict from reset_after=True params.

    Returns numpy arrays under ``nn.GRU``'s key names (``weight_ih_l{layer}[_reverse]``,
    ...; no bias keys for bias-free params, matching ``nn.GRU(bias=False)``). Load them
    with ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``,
    merging the dicts of every layer and direction.

    Raises `ValueError` for reset_after=False params (bias ``(3U,)``): PyTorch has no GRU
    with that math. Bias-free params do not record their convention, so they need
    ``cell`` (a ``GRUCell`` with ``use_bias=False, reset_after=True``); when ``cell`` is
    given, the params must fit it.
    """
    layer, reverse = _check_index(layer, reverse)
    arrays = to_torch_layout(params, cell, "PyTorch's nn.GRU")
    return {key: array for key, array in zip(_keys(layer, reverse).values(), arrays) if array is not None}
