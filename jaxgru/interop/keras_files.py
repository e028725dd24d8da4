"""GRU weights from saved Keras files: legacy ``.h5``, ``.weights.h5`` and ``.keras``.

Keras writes two HDF5 layouts, and this reads both (tf_keras and Keras 3 write them alike):

- legacy (``model.save("m.h5")``, ``model.save_weights("w.h5")``): one group per layer
  listed in the ``layer_names`` attribute (under ``model_weights`` for a full model), each
  listing its ``weight_names`` such as ``"gru/gru_cell/kernel:0"``;
- the saving library's (``*.weights.h5``, and ``model.weights.h5`` inside the ``.keras``
  zip): one group per object, ``layers/<path>/cell/vars/{0,1,2}`` for a GRU's
  ``[kernel, recurrent_kernel, bias]``. Keras 3 records each layer's name in its
  ``vars`` group's ``name`` attribute; tf_keras records no names.

A GRU is any cell whose weights are ``kernel``, ``recurrent_kernel (U, 3U)`` and optional
``bias``, which is what ``GRU``, ``RNN(GRUCell)`` and both directions of
``Bidirectional(GRU)`` save (an LSTM's recurrent kernel is ``(U, 4U)``).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Any, Union

import numpy as np

from jaxgru.interop.keras import Params, WEIGHT_NAMES, from_keras

_ARCHIVE_WEIGHTS = "model.weights.h5"
_VARIABLE_SUFFIX = re.compile(r":\d+$")


def _import_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError("load_keras_weights reads HDF5 files with h5py, which is not installed; "
                          "install it with `pip install jaxgru[h5]` (or `pip install h5py`).") from error
    return h5py


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _string_list(group, name: str) -> list[str]:
    """A list attribute that Keras may have split into ``name0, name1, ...`` when large."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [_text(v) for v in values]


def _is_gru_weights(arrays: list[np.ndarray]) -> bool:
    """Two or three weights whose second is a recurrent kernel of shape ``(U, 3U)``."""
    return (len(arrays) in (2, 3) and np.ndim(arrays[0]) == 2 and np.ndim(arrays[1]) == 2
            and arrays[1].shape[1] == 3 * arrays[1].shape[0])


def _add(layers: dict[str, Params], name: str, arrays: list[np.ndarray], path: str, where: str) -> None:
    if name in layers:
        raise ValueError(f"{path}: two GRU weight sets are both named {name!r} (at {where}).")
    try:
        layers[name] = from_keras(arrays)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: the GRU weights at {where!r} are malformed: {error}") from error


def _legacy_layers(root, path: str) -> dict[str, Params]:
    """Layer name -> params from the legacy layout; a GRU inside a nested model or a
    Bidirectional wrapper is named ``"<outer>/<inner>"`` (the weight name's scopes
    without the cell's own scope)."""
    layers: dict[str, Params] = {}
    for layer_name in _string_list(root, "layer_names"):
        group = root[layer_name]
        cells: dict[str, dict[str, Any]] = {}
        for weight_name in _string_list(group, "weight_names"):
            scope, _, variable = weight_name.rpartition("/")
            cells.setdefault(scope, {})[_VARIABLE_SUFFIX.sub("", variable)] = group[weight_name]
        for scope, variables in cells.items():
            if not {"kernel", "recurrent_kernel"} <= set(variables) <= set(WEIGHT_NAMES):
                continue
            arrays = [variables[name][()] for name in WEIGHT_NAMES if name in variables]
            if not _is_gru_weights(arrays):
                continue
            scopes = scope.split("/")[:-1]  # drop the cell's scope ("gru_cell")
            # Weight names start at the layer's own scope (tf_keras), or at an enclosing
            # model's scope (Keras 3: "sequential/gru/..."); a nested model's layers in
            # tf_keras start below the nested model's group.
            parts = scopes[scopes.index(layer_name):] if layer_name in scopes else [layer_name, *scopes]
            _add(layers, "/".join(parts), arrays, path, f"{layer_name}/{scope}")
    return layers


def _saving_lib_layers(root, path: str, h5py) -> dict[str, Params]:
    """Layer name -> params from the saving library's layout; names join the layer names
    (or, where tf_keras did not record them, the object path segments) of every layer
    from the outermost to the GRU, e.g. ``"bidirectional/forward_gru"``."""
    layers: dict[str, Params] = {}

    def segment(group_path: str) -> str:
        name = root[group_path]["vars"].attrs.get("name")
        return group_path.rsplit("/", 1)[-1] if name is None else _text(name)

    def visit(name: str, obj) -> None:
        parts = name.split("/")
        if not (isinstance(obj, h5py.Group) and parts[-1] == "vars" and "cell" in parts[:-1]):
            return
        if not all(str(i) in obj for i in range(len(obj))):
            return
        arrays = [obj[str(i)][()] for i in range(len(obj))]
        if not _is_gru_weights(arrays):
            return
        owner = parts[:-1]
        if owner[-1] == "cell":  # the RNN layer's `cell` attribute: named after its layer
            owner = owner[:-1]
        prefixes = ["/".join(owner[:i]) for i in range(1, len(owner) + 1)]
        names = [segment(p) for p in prefixes if isinstance(root[p], h5py.Group) and "vars" in root[p]]
        _add(layers, "/".join(names), arrays, path, name)

    root.visititems(visit)
    return layers


def load_keras_weights(path: Union[str, os.PathLike]) -> dict[str, Params]:
    """``{layer_name: params}`` for every GRU in a saved Keras model or weights file.

    Reads ``.h5`` (``model.save`` or ``model.save_weights`` in the legacy HDF5 format),
    ``.weights.h5`` and ``.keras`` files written by tf_keras or Keras 3 (the format is
    read from the file, not its extension). Needs ``h5py`` (``pip install jaxgru[h5]``).

    Names: the Keras layer name (``"gru_1"``); a GRU inside a ``Bidirectional`` wrapper or
    a nested model is ``"<outer>/<inner>"``, e.g. ``"bidirectional/forward_gru"`` and
    ``"bidirectional/backward_gru"``, ``"encoder/gru"``. tf_keras's ``.weights.h5`` and
    ``.keras`` files do not record layer names, so there the names are the file's object
    paths: a layer's snake-cased class with a counter in layer order (``"gru"``,
    ``"gru_1"``, ...) and ``"bidirectional/forward_layer"``, ``"bidirectional/backward_layer"``.

    Each params is as `from_keras` returns it: the bias shape gives ``reset_after``;
    bias-free layers need ``GRUCell(..., use_bias=False, reset_after=...)`` from the model.

    Raises:
      ImportError: h5py is missing. ValueError: the file is not a Keras HDF5/.keras file,
      holds no GRU, or holds malformed GRU weights.
    """
    h5py = _import_h5py()
    path = os.fspath(path)
    source: Any = path
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if _ARCHIVE_WEIGHTS not in archive.namelist():
                raise ValueError(f"{path}: a zip file without {_ARCHIVE_WEIGHTS!r}, so not a .keras file "
                                 f"(it holds {archive.namelist()}).")
            source = io.BytesIO(archive.read(_ARCHIVE_WEIGHTS))
    try:
        file = h5py.File(source, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a Keras .h5, .weights.h5 or .keras file ({error}).") from error
    with file:
        if "model_weights" in file:
            layers = _legacy_layers(file["model_weights"], path)
        elif "layer_names" in file.attrs:
            layers = _legacy_layers(file, path)
        else:
            layers = _saving_lib_layers(file, path, h5py)
    if not layers:
        raise ValueError(f"{path}: no GRU weights found (looked for kernel, recurrent_kernel (U, 3U) and bias of "
                         f"GRU cells).")
    return layers
