"""PyTorch ``nn.GRU`` / ``nn.GRUCell`` state dicts <-> jaxgru params.

``nn.GRU`` computes the ``reset_after=True`` math (``n = tanh(x W_in + b_in + r ⊙ (h W_hn +
b_hn))``) with gate blocks in [r, z, n] order and weights stored (out, in):

    weight_ih_l{k}[_reverse] (3U, D)   = [W_r; W_z; W_h]ᵀ of Keras's kernel (D, 3U)
    weight_hh_l{k}[_reverse] (3U, U)   = the same for the recurrent kernel (U, 3U)
    bias_ih_l{k}[_reverse]   (3U,)     = Keras bias[0] with blocks [r, z, h]
    bias_hh_l{k}[_reverse]   (3U,)     = Keras bias[1] with blocks [r, z, h]

so converting swaps the z and r blocks and transposes. An ``nn.GRUCell`` stores the same
arrays without the ``_l{k}`` suffix. `from_torch_stack` / `to_torch_stack` convert a whole
multi-layer (bidirectional) ``nn.GRU`` to the ``layers`` list of `jaxgru.stacked_rnn` and
back. A ``reset_after=False`` GRU applies the reset gate before the recurrent matmul, which
no PyTorch GRU computes: it has no exact conversion, and `to_torch` refuses it.

torch is never imported here: tensors are read by duck typing (``.detach().cpu()``).
`from_torch` also takes a state dict of JAX arrays inside `jax.jit` / `jax.vmap` and then
returns `jax.Array` params (numpy otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru._core.validation import check_bool, check_int
from jaxgru.interop._layout import (
    as_weight,
    check_fixed_activations,
    from_torch_layout,
    is_traced,
    to_torch_layout,
)
from jaxgru.types import Params

__all__ = ["from_torch", "from_torch_stack", "to_torch", "to_torch_stack"]


def _check_index(layer: Any, reverse: Any) -> tuple[int, bool]:
    if check_int(layer, "layer") < 0:
        raise ValueError(f"layer: expected a non-negative integer, got {layer!r}.")
    return int(layer), check_bool(reverse, "reverse")


_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# An nn.GRU state dict key: kind, layer index, direction.
_GRU_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l(0|[1-9][0-9]*)(_reverse)?")


# Error messages list at most this many keys, each cut to this many characters.
_SHOWN_KEYS, _SHOWN_CHARACTERS = 8, 100


def _shown_key(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= _SHOWN_CHARACTERS else f"{text[:_SHOWN_CHARACTERS]}... ({len(text)} characters)"


def _shown_keys(state_dict: Mapping[str, Any]) -> str:
    """The first `_SHOWN_KEYS` keys of ``state_dict`` (sorted as text), then "...and N more"."""
    keys = sorted(state_dict, key=str)
    shown = ", ".join(_shown_key(key) for key in keys[:_SHOWN_KEYS])
    return f"[{shown}{f', ...and {len(keys) - _SHOWN_KEYS} more' if len(keys) > _SHOWN_KEYS else ''}]"


def _tensor(state_dict: Mapping[str, Any], key: str) -> Any:
    """``state_dict[key]``, refused (a ValueError naming the key) when it is a tensor on
    torch's ``meta`` device, which has a shape but no values."""
    tensor = state_dict[key]
    if getattr(tensor, "is_meta", False) is True:
        raise ValueError(f"state_dict[{key!r}]: a tensor on the 'meta' device has a shape but no values; load or "
                         "materialize the module's weights first (e.g. module.to_empty(device='cpu') and then "
                         "load_state_dict) and pass its state_dict().")
    return tensor


def _keys(layer: int, reverse: bool) -> dict[str, str]:
    suffix = f"_l{layer}{'_reverse' if reverse else ''}"
    return {kind: kind + suffix for kind in _KINDS}


def _source_keys(state_dict: Mapping[str, Any], layer: int, reverse: bool) -> dict[str, str]:
    """The keys of ``(layer, reverse)``: ``nn.GRU``'s ``weight_ih_l{layer}[_reverse]``, ...,
    or the unsuffixed ``weight_ih``, ... of an ``nn.GRUCell`` state dict (one layer, forward)."""
    if "weight_ih" not in state_dict:
        return _keys(layer, reverse)
    if any(key in state_dict for key in _keys(0, False).values()):
        raise ValueError("state_dict: holds both nn.GRUCell keys ('weight_ih', ...) and nn.GRU keys "
                         "('weight_ih_l0', ...); pass the state dict of one module.")
    if layer != 0 or reverse:
        raise ValueError(f"state_dict: an nn.GRUCell state dict (keys 'weight_ih', ...) holds one layer and "
                         f"direction: expected layer=0, reverse=False, got layer={layer}, reverse={reverse}.")
    return {kind: kind for kind in _KINDS}


def from_torch(state_dict: Mapping[str, Any], *, layer: int = 0, reverse: bool = False) -> Params:
    """jaxgru params of one layer and direction of a PyTorch ``nn.GRU`` (or an ``nn.GRUCell``).

    Args:
      state_dict: ``module.state_dict()`` of an ``nn.GRU`` (torch tensors or numpy
        arrays), with keys ``weight_ih_l{layer}``, ``weight_hh_l{layer}`` and, unless the
        module has ``bias=False``, ``bias_ih_l{layer}``, ``bias_hh_l{layer}`` (suffix
        ``_reverse`` for the backward direction). Other keys are ignored. The state dict
        of an ``nn.GRUCell`` (keys ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``)
        is one layer and direction: only ``layer=0, reverse=False``.
      layer: the layer index k. reverse: the backward direction of a bidirectional GRU.

    Returns:
      numpy params (`jax.Array` s for a state dict of traced arrays, inside `jax.jit` /
      `jax.vmap`) for ``jaxgru.GRUCell(U, reset_after=True)`` (``use_bias=False`` when
      the module has no bias): kernel ``(D, 3U)``, recurrent_kernel ``(U, 3U)``, bias
      ``(2, 3U)``. A bidirectional stack is ``{"forward": from_torch(sd, layer=k),
      "backward": from_torch(sd, layer=k, reverse=True)}`` per layer for
      `jaxgru.bidirectional` (``merge_mode="concat"`` feeding the next layer);
      `from_torch_stack` builds that list for `jaxgru.stacked_rnn`.
    """
    _check_state_dict(state_dict)
    layer, reverse = _check_index(layer, reverse)
    keys = _source_keys(state_dict, layer, reverse)
    if keys["weight_ih"] not in state_dict:
        raise ValueError(f"state_dict: missing {keys['weight_ih']!r} of shape (3*hidden_size, input_size) "
                       f"(layer={layer}, reverse={reverse}); present keys: {_shown_keys(state_dict)}.")
    traced = is_traced([state_dict[key] for key in keys.values() if key in state_dict])
    weight_ih = as_weight(_tensor(state_dict, keys["weight_ih"]), keys["weight_ih"], traced)
    if weight_ih.ndim != 2 or weight_ih.shape[0] == 0 or weight_ih.shape[0] % 3 or weight_ih.shape[1] == 0:
        raise ValueError(f"state_dict[{keys['weight_ih']!r}]: expected shape (3*hidden_size, input_size), "
                         f"got {weight_ih.shape}.")
    units = weight_ih.shape[0] // 3
    expected = {"weight_hh": (3 * units, units), "bias_ih": (3 * units,), "bias_hh": (3 * units,)}
    has_bias = keys["bias_ih"] in state_dict or keys["bias_hh"] in state_dict
    arrays: dict[str, Any] = {"weight_ih": weight_ih, "bias_ih": None, "bias_hh": None}
    for kind, shape in expected.items():
        if kind.startswith("bias") and not has_bias:
            continue
        if keys[kind] not in state_dict:
            raise ValueError(f"state_dict: missing {keys[kind]!r} of shape {shape} (hidden_size={units} from "
                           f"{keys['weight_ih']!r}).")
        arrays[kind] = as_weight(_tensor(state_dict, keys[kind]), keys[kind], traced)
        if arrays[kind].shape != shape:
            raise ValueError(f"state_dict[{keys[kind]!r}]: expected shape {shape} for hidden_size={units} "
                             f"(from {keys['weight_ih']!r}), got {arrays[kind].shape}.")
    return from_torch_layout(**arrays)


def _check_state_dict(state_dict: Any) -> None:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping such as nn.GRU.state_dict(), got {type(state_dict).__name__}.")


def to_torch(params: Mapping[str, Any], *, layer: int = 0, reverse: bool = False,
             cell: GRUCell | None = None) -> dict[str, np.ndarray]:
    """One layer and direction of an ``nn.GRU`` state dict from reset_after=True params.

    Returns numpy arrays under ``nn.GRU``'s key names (``weight_ih_l{layer}[_reverse]``,
    ...; no bias keys for bias-free params, matching ``nn.GRU(bias=False)``). Load them
    with ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``,
    merging the dicts of every layer and direction.

    Raises `ValueError` for reset_after=False params (bias ``(3U,)``) and for a ``cell``
    whose activations are not sigmoid and tanh: PyTorch has no GRU with that math.
    Bias-free params do not record their convention, so they need ``cell`` (a
    ``GRUCell`` with ``use_bias=False, reset_after=True``); when ``cell`` is given, the
    params must fit it.
    """
    layer, reverse = _check_index(layer, reverse)
    check_fixed_activations(cell, "PyTorch's nn.GRU")
    arrays = to_torch_layout(params, cell, "PyTorch's nn.GRU")
    return {key: array for key, array in zip(_keys(layer, reverse).values(), arrays, strict=True) if array is not None}


def from_torch_stack(state_dict: Mapping[str, Any]) -> list:
    """The ``layers`` list of `jaxgru.stacked_rnn` from a whole ``nn.GRU`` state dict.

    The number of layers ``L`` and the directions are read from the keys
    (``weight_ih_l{k}``, ``weight_ih_l{k}_reverse``, ...): every layer ``0 .. L-1`` must be
    present, each in both directions when any key is ``_reverse``. Other keys are ignored.

    Returns:
      ``L`` entries, layer-major: ``from_torch(state_dict, layer=k)``, or, for a
      bidirectional module, ``{"forward": from_torch(state_dict, layer=k), "backward":
      from_torch(state_dict, layer=k, reverse=True)}``. ``nn.GRU(D, U, num_layers=L,
      bidirectional=b, bias=bias)`` is then ``jaxgru.stacked_rnn(jaxgru.GRUCell(U,
      use_bias=bias), layers, x, bidirectional=b)``.
    """
    _check_state_dict(state_dict)
    directions_of: dict[int, set[bool]] = {}
    key_of: dict[int, str] = {}
    for key in state_dict:
        match = _GRU_KEY.fullmatch(key) if isinstance(key, str) else None
        if not match:
            continue
        # a layer index needs at most one key of its own: anything beyond the dict's size
        # is absurd, and is refused before it is even converted to an int
        if len(match[2]) > len(str(len(state_dict))) or int(match[2]) >= len(state_dict):
            digits = match[2] if len(match[2]) <= 20 else f"{match[2][:20]}... ({len(match[2])} digits)"
            raise ValueError(f"state_dict[{_shown_key(key)}]: layer index {digits}, but the "
                             f"state dict holds only {len(state_dict)} keys; an nn.GRU with num_layers=L has "
                             "'weight_ih_l{k}', ... for k in 0..L-1.")
        layer = int(match[2])
        directions_of.setdefault(layer, set()).add(match[3] is not None)
        key_of.setdefault(layer, key)
    if not directions_of:
        hint = " (this is an nn.GRUCell state dict: use from_torch)" if "weight_ih" in state_dict else ""
        raise ValueError(f"state_dict: no nn.GRU keys such as 'weight_ih_l0'{hint}; present keys: "
                         f"{_shown_keys(state_dict)}.")
    count = len(directions_of)
    beyond = sorted(layer for layer in directions_of if layer >= count)
    if beyond:
        missing = min(k for k in range(count) if k not in directions_of)
        raise ValueError(f"state_dict[{_shown_key(key_of[beyond[0]])}]: a key of layer {beyond[0]}, but no keys "
                         f"of layer {missing}; an nn.GRU with num_layers=L has 'weight_ih_l{{k}}', ... for every "
                         f"layer k in 0..L-1 (keys of {count} layers found).")
    if not any(True in directions for directions in directions_of.values()):
        return [from_torch(state_dict, layer=k) for k in range(count)]
    return [{"forward": from_torch(state_dict, layer=k), "backward": from_torch(state_dict, layer=k, reverse=True)}
            for k in range(count)]


def _is_pair(entry: Any) -> bool:
    return isinstance(entry, Mapping) and set(entry) == {"forward", "backward"}


def _label(layer: int, direction: str | None) -> str:
    return f"layers[{layer}]" + ("" if direction is None else f"[{direction!r}]")


def to_torch_stack(layers: list, *, cell: GRUCell | None = None) -> dict[str, np.ndarray]:
    """A whole ``nn.GRU`` state dict from the ``layers`` list of `jaxgru.stacked_rnn`.

    Args:
      layers: ``L`` reset_after=True params, one per layer, or ``{"forward": params,
        "backward": params}`` in every layer for a bidirectional module. They must make
        an ``nn.GRU``: the same units ``U`` everywhere, layer ``k > 0`` taking ``U`` (or
        ``2U`` bidirectional) features, biases in every layer or (with ``cell``) in none.
      cell: as in `to_torch`, needed for bias-free params (``jaxgru.GRUCell(U,
        use_bias=False, reset_after=True)``); it must fit every layer.

    Returns:
      numpy arrays under ``nn.GRU``'s keys in its order (layer-major, forward before
      ``_reverse``), loadable with ``nn.GRU(D, U, num_layers=L, bidirectional=...,
      bias=...).load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
      ``to_torch_stack(from_torch_stack(sd))`` equals ``sd``.
    """
    if isinstance(layers, Mapping) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers: expected a list of per-layer params, got {type(layers).__name__}.")
    if not layers:
        raise ValueError("layers: expected at least one layer's params, got an empty list.")
    bidirectional = _is_pair(layers[0])
    directions = (("forward", False), ("backward", True)) if bidirectional else ((None, False),)
    state_dict = {}
    for k, entry in enumerate(layers):
        if _is_pair(entry) != bidirectional:
            expected = "a {'forward', 'backward'} pair" if bidirectional else "one params dict"
            raise ValueError(f"layers[{k}]: expected {expected} as layers[0]: an nn.GRU is bidirectional in every "
                             f"layer or in none.")
        for direction, reverse in directions:
            params = entry if direction is None else entry[direction]
            try:
                state_dict.update(to_torch(params, layer=k, reverse=reverse, cell=cell))
            except (TypeError, ValueError) as error:
                message = error.args[0] if error.args else error
                raise type(error)(f"{_label(k, direction)}: {message}") from None
    _check_one_module(state_dict, len(layers), directions)
    return state_dict


def _check_one_module(state_dict: Mapping[str, np.ndarray], count: int, directions: tuple) -> None:
    """The converted layers fit one ``nn.GRU``: one hidden size, layer k > 0 taking
    ``dirs * hidden_size`` features. (Biases everywhere or nowhere: `to_torch` refuses
    bias-free params without ``cell``, and params that do not fit ``cell``.)"""
    hidden = state_dict["weight_hh_l0"].shape[1]
    for k in range(count):
        for direction, reverse in directions:
            keys, label = _keys(k, reverse), _label(k, direction)
            units, input_dim = state_dict[keys["weight_hh"]].shape[1], state_dict[keys["weight_ih"]].shape[1]
            if units != hidden:
                raise ValueError(f"{label}: units={units}, but layers[0] has {hidden}; an nn.GRU has one hidden_size.")
            if k > 0 and input_dim != len(directions) * hidden:
                raise ValueError(f"{label}: the kernel takes D={input_dim} features, but layer {k} of an nn.GRU takes "
                                 f"{len(directions)} * hidden_size = {len(directions) * hidden}.")
