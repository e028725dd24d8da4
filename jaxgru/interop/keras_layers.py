"""Keras ``GRU`` and ``Bidirectional(GRU)`` layer configs -> a `GRUCell` and `jaxgru.rnn` options.

`layer_from_config` reads the dict of a tf_keras or Keras 3 ``layer.get_config()`` (or its
serialized form ``{"class_name": "GRU", "config": {...}}``) into the cell and the keyword
arguments that make `jaxgru.rnn` (or `jaxgru.bidirectional`) compute what the layer
computes; the weights come separately, from `jaxgru.from_keras` of the layer's
``get_weights()``:

    cell, options = layer_from_config(layer.get_config())
    outputs, final_state = jaxgru.rnn(cell, jaxgru.from_keras(layer.get_weights()), x, **options)

The mapping of each key of a ``GRU`` config:

* ``units``, ``activation``, ``recurrent_activation``, ``use_bias``, the
  ``*_initializer``, ``*_regularizer`` and ``*_constraint`` keys, ``dropout``,
  ``recurrent_dropout``, ``implementation``, ``reset_after``: the `GRUCell` arguments of
  the same name (`GRUCell.from_config`). tf_keras's legacy ``implementation=0`` becomes 1,
  as tf_keras's ``GRU.from_config`` does. In a Keras 3 config (one with a ``seed`` key:
  Keras 3 always writes one, tf_keras never) ``"hard_sigmoid"`` is Keras 3's
  ``relu6(x + 3) / 6`` and becomes `jax.nn.hard_sigmoid`; jaxgru's name means tf_keras's
  ``clip(0.2 x + 0.5, 0, 1)``.
* ``return_sequences``, ``go_backwards``: the options of the same name (Keras's default
  ``return_sequences=False`` is kept; `jaxgru.rnn` defaults to True).
* ``time_major`` (tf_keras only): ``options["time_major"]``; False for Keras 3.
* ``zero_output_for_mask``: ``options["zero_output_for_mask"]``; False when absent
  (tf_keras writes the key only when True).
* ``unroll``: ``options["unroll"]``, True (the whole loop unrolled) or 1.
* ``return_state``: nothing; `jaxgru.rnn` always returns ``(outputs, final_state)``.
* ``stateful``: nothing; jaxgru is functional: pass the returned ``final_state`` as the
  next call's ``initial_state``.
* ``seed`` (Keras 3): nothing; warns when dropout is active (below).
* ``activity_regularizer``: must be None (jaxgru has no activity regularizer; add a
  penalty on the outputs to the loss), else ValueError.
* ``name``, ``trainable``, ``dtype``, ``use_cudnn``, ``batch_shape``,
  ``batch_input_shape``, ``enable_caching_device``: ignored (nothing jaxgru computes
  with; see below for ``dtype``).
* anything else: ValueError naming the key.

For ``Bidirectional`` the cell is the ``(forward, backward)`` pair of `jaxgru.bidirectional`
(the backward cell is the ``backward_layer`` config when there is one, else the forward
layer's) and the options are ``merge_mode``, ``return_sequences``, ``time_major`` and
``unroll``. Keras's ``Bidirectional`` runs the forward layer forwards and the backward
layer backwards, and forces both layers' ``zero_output_for_mask`` to ``return_sequences``;
`jaxgru.bidirectional` does the same, so neither ``go_backwards`` nor
``zero_output_for_mask`` is an option there. A forward layer with ``go_backwards=True``
(which makes Keras run the forward layer backwards and the backward layer forwards) has no
`jaxgru.bidirectional` equivalent and is a ValueError.

Not modelled, by design:

* ``dtype``: a Keras dtype policy (``"float32"``, ``"mixed_float16"``, ...) is not read:
  jaxgru computes in the dtype of the inputs and params it is given.
* ``seed`` (Keras 3) seeds Keras's own dropout masks. jaxgru draws them from the ``rng``
  key passed to `jaxgru.rnn` (``rng=jax.random.key(...)``, ``training=True``), and a Keras
  seed does not map onto a JAX key: with dropout active a seed warns (UserWarning).
* Dropout in training: jaxgru applies the input masks that ``implementation`` says (1:
  one mask per gate; 2: one mask for all three). Keras's fused GRU kernels (tf_keras's
  standard and cuDNN GRU on any device, Keras 3's cuDNN path on a GPU; both need tanh,
  sigmoid, ``reset_after``, a bias, no ``recurrent_dropout`` and no ``unroll``) apply one
  mask to all three gates whatever ``implementation`` says, as jaxgru's implementation 2
  does. Inference (``training=False``) is unaffected.
* Keras's cuDNN kernel (on a GPU, right-padded masks only) outputs zeros at masked steps
  whatever ``zero_output_for_mask`` says; the config describes the other kernels, which
  this mapping follows. Pass ``zero_output_for_mask=True`` to match a cuDNN run.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from jaxgru._core.cell import GRUCell
from jaxgru._core.layer_options import MERGE_MODES
from jaxgru._core.validation import check_bool, dropout_active, shown_keys
from jaxgru._deprecations import module_getattr

__all__ = ["layer_from_config"]

Cells = GRUCell | tuple[GRUCell, GRUCell]

_CELL_KEYS = frozenset(f.name for f in dataclasses.fields(GRUCell))
# Layer keys that carry nothing jaxgru computes with (see the module docstring).
_IGNORED_LAYER_KEYS = frozenset({"name", "trainable", "dtype", "use_cudnn", "batch_shape", "batch_input_shape",
                                 "enable_caching_device"})
_LAYER_KEYS = frozenset({"return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major",
                         "zero_output_for_mask", "activity_regularizer", "seed"}) | _IGNORED_LAYER_KEYS
_BIDIRECTIONAL_KEYS = frozenset({"layer", "merge_mode", "backward_layer", "name", "trainable", "dtype",
                                 "batch_shape", "batch_input_shape"})
# Keys of the serialized form besides "class_name" and "config" (a layer entry of a
# functional model's config also has its "name" and "inbound_nodes").
_SERIALIZED_KEYS = frozenset({"module", "registered_name", "build_config", "shared_object_id", "name",
                              "inbound_nodes"})
_USE_CUDNN = ("auto", True, False)


# The deepest nesting of dicts and lists read from a config (a Keras GRU config nests
# about 5 deep: layer, initializer config, its dtype policy...).
_MAX_CONFIG_DEPTH = 64


def _plain(value: Any, label: str, depth: int = 0, ancestors: frozenset[int] = frozenset()) -> Any:
    """``value`` with every mapping a dict and every list (or tuple) a list (tf_keras hands
    out tracking wrappers around its dicts and lists). A config nested deeper than
    `_MAX_CONFIG_DEPTH` or containing itself is a ValueError naming the key path ``label``
    (instead of a RecursionError)."""
    if not isinstance(value, (Mapping, list, tuple)):
        return value
    if id(value) in ancestors:
        raise ValueError(f"{label}: contains itself (a cycle); a Keras config is a tree of dicts and lists.")
    if depth >= _MAX_CONFIG_DEPTH:
        raise ValueError(f"{label[:300]}...: nested more than {_MAX_CONFIG_DEPTH} dicts and lists deep; a Keras "
                         "layer config nests a few levels.")
    ancestors = ancestors | {id(value)}
    if isinstance(value, Mapping):
        return {key: _plain(item, f"{label}[{_short(key)}]", depth + 1, ancestors) for key, item in value.items()}
    items = [_plain(item, f"{label}[{i}]", depth + 1, ancestors) for i, item in enumerate(value)]
    return items if isinstance(value, list) else tuple(items)


def _short(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _unwrap(config: Any, label: str) -> tuple[str, dict[str, Any]]:
    """``(class_name, config)`` of a serialized ``{"class_name", "config"}`` dict or of a
    flat ``get_config()`` dict (a ``Bidirectional`` one holds "layer", a GRU one not)."""
    if not isinstance(config, Mapping):
        raise TypeError(f"{label}: expected a Keras layer config dict, got {type(config).__name__}.")
    if "class_name" not in config:
        return ("Bidirectional" if "layer" in config else "GRU"), _plain(config, label)
    class_name, inner = config["class_name"], config.get("config")
    if not isinstance(class_name, str):
        raise ValueError(f"{label}['class_name']: expected a string, got {class_name!r}.")
    if not isinstance(inner, Mapping):
        raise ValueError(f"{label}['config']: expected the layer's config dict, got {type(inner).__name__}.")
    extra = set(config) - {"class_name", "config"} - _SERIALIZED_KEYS
    if extra:
        raise ValueError(f"{label}: unknown keys {shown_keys(extra)} in a serialized layer config.")
    return class_name, _plain(inner, f"{label}['config']")


def _seed_warning(seed: Any, cell: GRUCell, label: str) -> str | None:
    """The warning a Keras 3 ``seed`` deserves: one when it would seed active dropout."""
    if seed is None or not (dropout_active(cell.dropout) or dropout_active(cell.recurrent_dropout)):
        return None
    return (f"{label}['seed']={seed!r}: Keras seeds its dropout masks with it; jaxgru draws them from the rng key "
            "passed to jaxgru.rnn (rng=jax.random.key(...), training=True), and a Keras seed does not map onto a "
            "JAX key, so the masks differ from Keras's.")


def _gru(config: dict[str, Any], label: str) -> tuple[GRUCell, dict[str, Any], list[str]]:
    """The cell, the `jaxgru.rnn` options and the warnings of a flat GRU layer config."""
    unknown = set(config) - _CELL_KEYS - _LAYER_KEYS
    if unknown:
        raise ValueError(f"{label}: unknown keys {shown_keys(unknown)} for a Keras GRU layer; jaxgru reads "
                         f"{sorted(_CELL_KEYS | _LAYER_KEYS)}.")
    if config.get("activity_regularizer") is not None:
        raise ValueError(f"{label}['activity_regularizer']: {config['activity_regularizer']!r} is not supported "
                         "(jaxgru has no activity regularizer: add a penalty on the outputs to the loss); "
                         "expected None.")
    if config.get("use_cudnn", "auto") not in _USE_CUDNN:
        raise ValueError(f"{label}['use_cudnn']: expected one of {_USE_CUDNN}, got {config['use_cudnn']!r}.")
    flags = {name: check_bool(config.get(name, False), f"{label}[{name!r}]")
             for name in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major",
                          "zero_output_for_mask")}
    cell_config = {key: value for key, value in config.items() if key in _CELL_KEYS}
    if "seed" in config:
        cell_config["seed"] = None  # marks a Keras 3 config (its hard_sigmoid); the seed warns below
    if cell_config.get("implementation") == 0:
        cell_config["implementation"] = 1  # tf_keras's GRU.from_config
    if "units" not in cell_config:
        raise ValueError(f"{label}: missing 'units'.")
    try:
        cell = GRUCell.from_config(cell_config)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{label}: {error}") from None
    message = _seed_warning(config.get("seed"), cell, label)
    options: dict[str, Any] = {name: flags[name] for name in ("return_sequences", "go_backwards", "time_major",
                                              "zero_output_for_mask")}
    options["unroll"] = True if flags["unroll"] else 1
    return cell, options, [] if message is None else [message]


def _inner_gru(config: Any, label: str) -> tuple[GRUCell, dict[str, Any], list[str]]:
    class_name, inner = _unwrap(config, label)
    if class_name != "GRU":
        raise ValueError(f"{label}: expected a GRU layer inside Bidirectional, got class_name {class_name!r}.")
    return _gru(inner, label)


def _bidirectional(config: dict[str, Any], label: str) -> tuple[tuple[GRUCell, GRUCell], dict[str, Any], list[str]]:
    unknown = set(config) - _BIDIRECTIONAL_KEYS
    if unknown:
        raise ValueError(f"{label}: unknown keys {shown_keys(unknown)} for a Keras Bidirectional layer; jaxgru reads "
                         f"{sorted(_BIDIRECTIONAL_KEYS)}.")
    if "layer" not in config:
        raise ValueError(f"{label}: missing 'layer' (the wrapped GRU layer's config).")
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"{label}['merge_mode']: expected one of {MERGE_MODES}, got {merge_mode!r}.")
    layers = {"layer": _inner_gru(config["layer"], f"{label}['layer']")}
    if config.get("backward_layer") is not None:
        layers["backward_layer"] = _inner_gru(config["backward_layer"], f"{label}['backward_layer']")
    for key, (_, options, _) in layers.items():
        if options["go_backwards"] != (key == "backward_layer"):
            raise ValueError(
                f"{label}[{key!r}]['go_backwards']: expected {key == 'backward_layer'}; jaxgru.bidirectional runs "
                "the forward layer forwards and the backward layer backwards (Keras's Bidirectional swaps the "
                "directions when the wrapped layer has go_backwards=True, which jaxgru does not model).")
    (forward, fw_options, fw_warnings), (backward, bw_options, bw_warnings) = (
        layers["layer"], layers.get("backward_layer", layers["layer"]))
    for name in ("return_sequences", "time_major"):
        if fw_options[name] != bw_options[name]:
            raise ValueError(f"{label}['backward_layer'][{name!r}]: {bw_options[name]}, but the forward layer has "
                             f"{fw_options[name]}; Keras's Bidirectional needs them equal.")
    if merge_mode in ("sum", "ave", "mul") and forward.units != backward.units:
        raise ValueError(f"{label}['merge_mode']: {merge_mode!r} needs equal units, got {forward.units} (layer) "
                         f"and {backward.units} (backward_layer).")
    options = {"merge_mode": merge_mode, "return_sequences": fw_options["return_sequences"],
               "time_major": fw_options["time_major"], "unroll": fw_options["unroll"]}
    return (forward, backward), options, fw_warnings + (bw_warnings if "backward_layer" in layers else [])


def layer_from_config(config: Mapping[str, Any]) -> tuple[Cells, dict[str, Any]]:
    """A Keras ``GRU`` or ``Bidirectional(GRU)`` layer config as jaxgru's cell and options.

    Args:
      config: a tf_keras or Keras 3 ``layer.get_config()`` dict, or the serialized form
        ``{"class_name": "GRU" | "Bidirectional", "config": {...}}`` (with or without
        "module", "registered_name" and "build_config"), e.g. one entry of a model
        config's "layers" list.

    Returns:
      For ``GRU``: ``(cell, options)``, with ``options`` the keyword arguments of
      `jaxgru.rnn`: ``return_sequences``, ``go_backwards``, ``time_major``,
      ``zero_output_for_mask``, ``unroll``. For ``Bidirectional``: ``((forward_cell,
      backward_cell), options)`` with the keyword arguments of `jaxgru.bidirectional`:
      ``merge_mode``, ``return_sequences``, ``time_major``, ``unroll``. `jaxgru.rnn` and
      `jaxgru.bidirectional` return the final state(s) as Keras's ``return_state=True``
      does. The module docstring lists what each Keras key maps to.

    Raises:
      TypeError: ``config`` (or a nested layer config) is not a dict, or a flag is not a bool.
      ValueError: naming the key: a class other than ``GRU`` or ``Bidirectional(GRU)``,
        a config nested deeper than 64 dicts and lists or containing
        itself, an unknown key, a non-None ``activity_regularizer``, a ``Bidirectional`` whose
        forward layer has ``go_backwards=True``, or a cell argument `GRUCell` rejects.

    Warns:
      UserWarning: a Keras 3 ``seed`` with active dropout (jaxgru draws dropout masks
        from the ``rng`` key given to `jaxgru.rnn`).
    """
    class_name, inner = _unwrap(config, "config")
    cells: Cells
    if class_name == "GRU":
        cells, options, messages = _gru(inner, "config")
    elif class_name == "Bidirectional":
        cells, options, messages = _bidirectional(inner, "config")
    else:
        raise ValueError(f"config: class_name {class_name!r} is not supported; expected 'GRU' or 'Bidirectional' "
                         "(wrapping a GRU).")
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=2)
    return cells, options


__getattr__ = module_getattr(__name__)
