"""ONNX's native ``GRU`` operator <-> jaxgru params: a one-node export and its reader.

ONNX's ``GRU`` has Keras's gate order [z, r, h] and stores its weights (out, in), one
block per direction ``d`` (0 forward, 1 backward):

    W [dirs, 3U, D]   W[d] = kernel (D, 3U) transposed
    R [dirs, 3U, U]   R[d] = recurrent_kernel (U, 3U) transposed
    B [dirs, 6U]      B[d] = [Wb; Rb], each (3U,) with blocks [z, r, h]

With f the recurrent activation (Keras's ``recurrent_activation``) and g the activation
(Keras's ``activation``), a step from ``h`` reads:

    z  = f(x Wzᵀ + h Rzᵀ + Wbz + Rbz)
    r  = f(x Wrᵀ + h Rrᵀ + Wbr + Rbr)
    ĥ  = g(x Whᵀ + (r ⊙ h) Rhᵀ + Rbh + Wbh)      linear_before_reset=0
    ĥ  = g(x Whᵀ + r ⊙ (h Rhᵀ + Rbh) + Wbh)      linear_before_reset=1
    h' = (1 - z) ⊙ ĥ + z ⊙ h

which is Keras's GRUCell:

* ``linear_before_reset=1`` is ``reset_after=True``: bias ``(2, 3U) = [Wb; Rb]``.
* ``linear_before_reset=0`` is ``reset_after=False``: both bias halves sit outside the
  reset product, so only their sum counts, and Keras's one bias ``(3U,)`` is ``Wb + Rb``.
  `to_onnx` writes it as ``Wb`` with ``Rb = 0``; `from_onnx` folds ``Wb + Rb`` (exact up
  to the rounding of that one float addition).
* no ``B`` input means zero biases: ``use_bias=False``.

Activations that onnxruntime's GRU runs, by Keras name (tf_keras's definitions, as in
`jaxgru.activations`):

    sigmoid -> Sigmoid          softsign     -> Softsign
    tanh    -> Tanh             softplus     -> Softplus
    relu    -> Relu             elu          -> Elu(alpha=1)
    linear  -> Affine(alpha=1, beta=0)       (also activation=None)
    hard_sigmoid -> HardSigmoid(alpha=0.2, beta=0.5)   (tf_keras's clip(0.2 x + 0.5, 0, 1))
    leaky_relu   -> LeakyRelu(alpha=0.2)               (TensorFlow's slope)

``activation_alpha`` / ``activation_beta`` list the values in the order the activations
consume them, only for the functions that take them (onnxruntime's reading of the
spec's "consumed in the order of activation functions").

`to_onnx` exports for inference (dropout is a training-time op and is left out) as one
``layout=0`` GRU node: onnxruntime's GRU refuses ``layout=1``, so batch-first inputs and
outputs go through Transpose nodes. `from_onnx` reads every GRU node's weights back.
onnx is imported only when these functions run (``pip install onnx``).

`from_onnx` treats a file as untrusted: at most ``max_bytes`` (`DEFAULT_MAX_BYTES`, 256
MiB) are read, and before protobuf parses them a scan of the wire format counts the
entries the parse would allocate (messages, strings, list items) against
``max(2**18, size // 16)`` by default, so memory stays within a small multiple of the file's size.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru._core.layer_options import check_bidirectional_params
from jaxgru._core.validation import check_bool, check_int
from jaxgru._deprecations import module_getattr
from jaxgru.interop._layout import as_numpy
from jaxgru.types import Params

if TYPE_CHECKING:
    import onnx

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_OPSET", "from_onnx", "to_onnx"]

DEFAULT_OPSET = 17
_MIN_OPSET = 14
# The largest file from_onnx reads unless given max_bytes= (weights of a GRU with U = 2048
# and D = 2048 take 96 MiB in float32).
DEFAULT_MAX_BYTES = 256 * 2 ** 20
# No user content in an error message is longer than this many characters.
_SHOWN_CHARACTERS = 200
# Lists in error messages show at most this many items.
_SHOWN_ITEMS = 8

# Keras name -> (ONNX activation, alpha, beta); None where the ONNX function takes no such value.
_ACTIVATIONS: dict[str, tuple[str, Any, Any]] = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 0.2, 0.5),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
}
_DEFAULT_ACTIVATIONS = ("sigmoid", "tanh")  # ONNX's (f, g) when the attribute is absent


def _import_onnx():
    try:
        import onnx
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as error:
        raise ImportError("jaxgru's ONNX converters need the onnx package: pip install onnx") from error
    return onnx


def _onnx_activation(identifier: Any, argument: str) -> tuple[str, Any, Any]:
    name = "linear" if identifier is None else identifier
    if isinstance(name, str) and name in _ACTIVATIONS:
        return _ACTIVATIONS[name]
    what = f"the callable {identifier!r}" if callable(identifier) else repr(identifier)
    raise ValueError(f"{argument}: {what} has no activation in ONNX's GRU that onnxruntime runs; to_onnx maps "
                     f"the Keras names {sorted(_ACTIVATIONS)} and None (as 'linear'). Pass one of those names "
                     f"(not a function).")


def _check_opset(opset: Any, onnx) -> int:
    if opset is None:
        return DEFAULT_OPSET
    opset = check_int(opset, "opset")
    latest = onnx.defs.onnx_opset_version()
    if not _MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset: expected an ONNX opset from {_MIN_OPSET} to {latest} (this onnx's latest), "
                         f"got {opset}.")
    return opset


def _onnx_bias(arrays: Params, cell: GRUCell) -> np.ndarray:
    """``[Wb; Rb]`` (6U,) of one direction's Keras bias."""
    bias = arrays["bias"]
    if cell.reset_after:
        return np.concatenate([bias[0], bias[1]])
    return np.concatenate([bias, np.zeros_like(bias)])


def to_onnx(cell: GRUCell, params: Mapping[str, Any], *, bidirectional: bool = False, batch_first: bool = True,
            sequence_lens: bool = False, initial_h: bool = False, opset: int | None = None) -> onnx.ModelProto:
    """An ONNX model of one native ``GRU`` node computing ``jaxgru.rnn(cell, params, x)``.

    The weights are initializers in ONNX's layout (see the module docstring);
    ``linear_before_reset`` is ``cell.reset_after``, and ``activations`` (with
    ``activation_alpha`` / ``activation_beta`` where needed) come from
    ``cell.recurrent_activation`` (f) and ``cell.activation`` (g).

    Args:
      cell: the `GRUCell` the params belong to.
      params: one layer's ``{"kernel", "recurrent_kernel"[, "bias"]}``, or with
        ``bidirectional=True`` ``{"forward": params, "backward": params}`` (the tree
        `jaxgru.bidirectional` takes): a ``direction="bidirectional"`` node.
      bidirectional: see ``params``.
      batch_first: graph input ``X`` is ``[batch, time, D]`` (``rnn``'s default) and the
        outputs ``Y [batch, time, dirs, U]``, ``Y_h [batch, dirs, U]``, the shapes of the
        GRU's ``layout=1``. onnxruntime's GRU runs only ``layout=0``, so the node keeps
        ``layout=0`` and Transpose nodes move batch and time axes around it. With
        ``batch_first=False``: ``X [time, batch, D]``, ``Y [time, dirs, batch, U]``,
        ``Y_h [dirs, batch, U]`` (``rnn(..., time_major=True)``), no Transpose.
      sequence_lens: add the graph input ``sequence_lens`` (int32 ``[batch]``), right
        padding's lengths as ``rnn``'s ``seq_lengths``: ``Y`` is zeros past each length
        (``zero_output_for_mask=True``) and ``Y_h`` the state at the last valid step. A
        row of length 0 has ``Y_h`` equal to its ``initial_h`` (zeros without it), as in
        ``rnn``: onnxruntime's GRU returns zeros there, so with ``initial_h`` the model
        adds ``Where(sequence_lens == 0, initial_h, Y_h)`` after the GRU node.
      initial_h: add the graph input ``initial_h``, ``[batch, dirs, U]`` with
        ``batch_first`` else ``[dirs, batch, U]`` (the states ``rnn`` takes as
        ``initial_state``; forward first). Without it the state starts at zeros.
      opset: the ONNX opset, default 17 (read by every onnxruntime since 1.13 and by most
        other runtimes; GRU and Transpose compute the same from opset 14, the lowest
        accepted, to the newest).

    Batch and time are symbolic dimensions (``"batch"``, ``"time"``) of the inputs.
    The model is float32 throughout (weights, ``X``, ``initial_h``, ``Y``, ``Y_h``):
    onnxruntime's GRU kernel computes in float32 only (a double model loads but fails to
    run), so float64 params are rounded to float32 and float16/bfloat16 widened.

    This is an inference export: ``cell.dropout`` and ``cell.recurrent_dropout`` act
    only in training (``training=True``), ONNX's GRU has no dropout, and the model
    computes ``rnn(..., training=False)`` without a warning. Initializers,
    regularizers, constraints and ``implementation`` do not change that function and are
    not recorded either.

    Raises:
      ValueError: an activation with no ONNX equivalent (a callable, or a name such as
        "gelu"), naming ``cell.activation`` / ``cell.recurrent_activation``; params that
        do not fit ``cell``; an opset out of range.
      TypeError: a wrong type of ``cell``, params or flag.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(cell, GRUCell):
        raise TypeError(f"cell: expected a jaxgru.GRUCell, got {type(cell).__name__}.")
    bidirectional = check_bool(bidirectional, "bidirectional")
    batch_first = check_bool(batch_first, "batch_first")
    sequence_lens = check_bool(sequence_lens, "sequence_lens")
    initial_h = check_bool(initial_h, "initial_h")
    opset = _check_opset(opset, onnx)
    f = _onnx_activation(cell.recurrent_activation, "cell.recurrent_activation")
    g = _onnx_activation(cell.activation, "cell.activation")

    if bidirectional:
        input_dim = check_bidirectional_params((cell, cell), params)
        trees = [("params['forward']", params["forward"]), ("params['backward']", params["backward"])]
    else:
        if isinstance(params, Mapping) and set(params) == {"forward", "backward"}:
            raise ValueError("params: a {'forward', 'backward'} pair is a bidirectional GRU; pass "
                             "bidirectional=True.")
        input_dim = cell.check_params(params)
        trees = [("params", params)]
    arrays = [{name: as_numpy(w, f"{label}[{name!r}]").astype(np.float32) for name, w in tree.items()}
              for label, tree in trees]
    units, dirs = cell.units, len(arrays)

    initializers = [
        numpy_helper.from_array(np.stack([a["kernel"].T for a in arrays]), "W"),
        numpy_helper.from_array(np.stack([a["recurrent_kernel"].T for a in arrays]), "R"),
    ]
    if cell.use_bias:
        initializers.append(numpy_helper.from_array(np.stack([_onnx_bias(a, cell) for a in arrays]), "B"))

    def value_info(name, shape, elem_type=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, elem_type, shape)

    nodes, inputs = [], []
    if batch_first:
        inputs.append(value_info("X", ["batch", "time", input_dim]))
        nodes.append(helper.make_node("Transpose", ["X"], ["X_time_major"], name="X_to_time_major", perm=[1, 0, 2]))
        x_name = "X_time_major"
    else:
        inputs.append(value_info("X", ["time", "batch", input_dim]))
        x_name = "X"
    gru_inputs = [x_name, "W", "R", "B" if cell.use_bias else "", "", ""]
    if sequence_lens:
        inputs.append(value_info("sequence_lens", ["batch"], TensorProto.INT32))
        gru_inputs[4] = "sequence_lens"
    if initial_h:
        if batch_first:
            inputs.append(value_info("initial_h", ["batch", dirs, units]))
            nodes.append(helper.make_node("Transpose", ["initial_h"], ["initial_h_time_major"],
                                          name="initial_h_to_time_major", perm=[1, 0, 2]))
            gru_inputs[5] = "initial_h_time_major"
        else:
            inputs.append(value_info("initial_h", [dirs, "batch", units]))
            gru_inputs[5] = "initial_h"
    while gru_inputs[-1] == "":
        gru_inputs.pop()

    activations = [f, g] * dirs
    attributes: dict[str, Any] = {"hidden_size": units, "direction": "bidirectional" if bidirectional else "forward",
                  "linear_before_reset": int(cell.reset_after), "activations": [a[0] for a in activations]}
    alphas = [a[1] for a in activations if a[1] is not None]
    betas = [a[2] for a in activations if a[2] is not None]
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    y_h_name = "Y_h_time_major" if batch_first else "Y_h"
    gru_outputs = ["Y_time_major" if batch_first else "Y", y_h_name]
    if sequence_lens and initial_h:
        # onnxruntime's GRU returns Y_h = 0 for a row of length 0; jaxgru.rnn returns its
        # initial state: Y_h = Where(sequence_lens == 0, initial_h, GRU's Y_h).
        gru_outputs[1] = "Y_h_gru"
        initializers += [numpy_helper.from_array(np.zeros((), np.int32), "zero_length"),
                         numpy_helper.from_array(np.array([1, -1, 1], np.int64), "empty_rows_shape")]
        nodes += [helper.make_node("Equal", ["sequence_lens", "zero_length"], ["empty_rows"], name="empty_rows"),
                  helper.make_node("Reshape", ["empty_rows", "empty_rows_shape"], ["empty_rows_3d"],
                                   name="empty_rows_to_3d"),
                  helper.make_node("Where", ["empty_rows_3d", gru_inputs[5], "Y_h_gru"], [y_h_name],
                                   name="empty_rows_keep_initial_h")]
    nodes.insert(len(nodes) - (3 if sequence_lens and initial_h else 0),
                 helper.make_node("GRU", gru_inputs, gru_outputs, name="gru", **attributes))
    if batch_first:
        nodes.append(helper.make_node("Transpose", ["Y_time_major"], ["Y"], name="Y_to_batch_first",
                                      perm=[2, 0, 1, 3]))
        nodes.append(helper.make_node("Transpose", ["Y_h_time_major"], ["Y_h"], name="Y_h_to_batch_first",
                                      perm=[1, 0, 2]))
        outputs = [value_info("Y", ["batch", "time", dirs, units]),
                   value_info("Y_h", ["batch", dirs, units])]
    else:
        outputs = [value_info("Y", ["time", dirs, "batch", units]),
                   value_info("Y_h", [dirs, "batch", units])]

    graph = helper.make_graph(nodes, "jaxgru_gru", inputs, outputs, initializers)
    from jaxgru import __version__

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="jaxgru",
                              producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    return model


# ---------------------------------------------------------------------------------- reading
def _shown(value: Any) -> str:
    """``repr(value)`` cut to `_SHOWN_CHARACTERS`: names and values read from a file are
    user content, and no error message repeats megabytes of it."""
    text = repr(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return f"{text[:_SHOWN_CHARACTERS]}... ({len(text)} characters)"


def _shown_list(items: Any) -> str:
    """At most `_SHOWN_ITEMS` items of ``items``, each `_shown`, then "...and N more"."""
    items = list(items)
    shown = ", ".join(_shown(item) for item in items[:_SHOWN_ITEMS])
    more = f", ...and {len(items) - _SHOWN_ITEMS} more" if len(items) > _SHOWN_ITEMS else ""
    return f"[{shown}{more}]"


def _default_max_entries(size: int) -> int:
    """The most protobuf entries (messages, strings and bytes fields, list items) that
    `from_onnx` lets a file of ``size`` bytes declare by default: ``max(2**18, size //
    16)``. Each entry costs the parsed model up to ~150 bytes however few bytes it takes
    in the file (an empty node takes 2), so the parse stays within about 10 times the
    file's size (+ 40 MB); a GRU model has a few hundred entries and most of its bytes
    in weights."""
    return max(2 ** 18, size // 16)


def _read_varint(data: bytes, position: int, end: int, source: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= end or shift > 63:
            raise ValueError(f"{source}: not a readable ONNX model (a truncated or overlong varint at byte "
                             f"{position}).")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _count_entries(data: bytes, descriptor, budget: int, source: str) -> None:
    """Walks the protobuf wire format of ``data`` as the message ``descriptor`` (onnx's
    own ``ModelProto.DESCRIPTOR``, descending into every message-typed field it names) and
    raises a ValueError once more than ``budget`` entries are declared. Packed numbers
    and bytes are skipped by their length; every field occurrence counts one."""
    from google.protobuf.descriptor import FieldDescriptor

    entries = 0
    stack = [(0, len(data), descriptor, 0)]
    while stack:
        position, end, message, depth = stack.pop()
        if depth > 100:  # protobuf's own recursion limit
            raise ValueError(f"{source}: not a readable ONNX model (messages nested more than 100 deep).")
        fields = message.fields_by_number if message is not None else {}
        while position < end:
            key, position = _read_varint(data, position, end, source)
            number, wire_type = key >> 3, key & 7
            entries += 1
            if entries > budget:
                raise ValueError(f"{source}: declares more than {budget} protobuf entries (nodes, attributes, "
                                 "list items, ...), more than from_onnx parses from a file of this size; for a "
                                 "model you trust, pass a larger max_entries=.")
            if wire_type == 0:
                _, position = _read_varint(data, position, end, source)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _read_varint(data, position, end, source)
                if position + length > end:
                    raise ValueError(f"{source}: not a readable ONNX model (a field runs past its message).")
                field = fields.get(number)
                if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                    stack.append((position, position + length, field.message_type, depth + 1))
                position += length
            else:  # groups (3, 4) are not in onnx.proto; protobuf would refuse them too
                raise ValueError(f"{source}: not a readable ONNX model (wire type {wire_type} in field {number}).")
        if position != end:
            raise ValueError(f"{source}: not a readable ONNX model (a field runs past its message).")


def _read_bounded(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refused (before reading) beyond ``max_bytes``."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            raise ValueError(f"{path}: {size} bytes, more than max_bytes={max_bytes} (from_onnx reads at most "
                             f"jaxgru.interop.onnx.DEFAULT_MAX_BYTES = {DEFAULT_MAX_BYTES} by default); for a "
                             "model you trust, pass a larger max_bytes=.")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # the file grew after fstat
        raise ValueError(f"{path}: more than max_bytes={max_bytes} bytes; pass a larger max_bytes= for a model "
                         "you trust.")
    return data


def _load(model_or_path: Any, max_bytes: int, most_entries: int | None) -> tuple[onnx.ModelProto, str]:
    """The model and the label its errors start with; a file is read if it has at most
    ``max_bytes`` bytes, its entries counted by `_count_entries` (at most
    ``most_entries``, default `_default_max_entries` of its size) before it is parsed, without
    external data."""
    onnx = _import_onnx()
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path, "model"
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"model_or_path: expected an onnx.ModelProto or a file path, "
                        f"got {type(model_or_path).__name__}.")
    path = os.fspath(model_or_path)
    if not isinstance(path, str):
        raise TypeError(f"model_or_path: expected a str path, got {type(path).__name__}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file.")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a regular file; expected an .onnx model file.")
    data = _read_bounded(path, max_bytes)
    budget = _default_max_entries(len(data)) if most_entries is None else most_entries
    _count_entries(data, onnx.ModelProto.DESCRIPTOR, budget, path)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # noqa: BLE001 (protobuf's DecodeError and its kin: not an ONNX model)
        raise ValueError(f"{path}: not a readable ONNX model ({type(error).__name__}: "
                         f"{_shown(str(error))}).") from None
    return model, path


def _constant_tensors(graph, source: str) -> dict[str, Any]:
    """name -> TensorProto of the initializers and of Constant nodes' ``value`` outputs.

    Every name is defined once: an initializer name twice, a node output twice, a node
    output that is also an initializer or graph input, or a graph input twice is a
    ValueError naming it (onnxruntime would pick one of the definitions, so the weights
    read could differ from the ones it runs). An initializer that is also a graph input
    is its default value (ONNX's IR < 4 lists every initializer as an input) and is read.
    """
    tensors: dict[str, Any] = {}
    for tensor in list(graph.initializer) + list(graph.sparse_initializer):
        name = tensor.name if hasattr(tensor, "name") else tensor.values.name
        if name in tensors:
            raise ValueError(f"{source}: the initializer {_shown(name)} is defined twice; expected each name once.")
        tensors[name] = tensor
    inputs: set[str] = set()
    for value in graph.input:
        if value.name in inputs:
            raise ValueError(f"{source}: the graph input {_shown(value.name)} is declared twice; expected each "
                             "name once.")
        inputs.add(value.name)
    outputs: set[str] = set()
    for node in graph.node:
        for name in node.output:
            if not name:
                continue
            if name in outputs or name in tensors or name in inputs:
                other = ("another node's output" if name in outputs else
                         "an initializer" if name in tensors else "a graph input")
                raise ValueError(f"{source}: {_shown(name)} is the output of node {_shown(node.name)} "
                                 f"({_shown(node.op_type)}) and also {other}; expected each name defined once.")
            outputs.add(name)
    constants = {name: tensor for name, tensor in tensors.items() if hasattr(tensor, "data_type")}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = attribute.t
    return constants


_FLOAT_TYPES = ("FLOAT", "DOUBLE", "FLOAT16")


def _weight(graph, tensors: Mapping[str, Any], name: str, role: str, label: str) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    if name not in tensors:
        inputs = {value.name for value in graph.input}
        where = ("the graph input" if name in inputs else "the output of a node, not a constant,")
        raise ValueError(f"{label}: its {role} input {_shown(name)} is {where}; from_onnx reads weights stored in the "
                         f"model (initializers or Constant nodes).")
    tensor = tensors[name]
    if tensor.data_location == TensorProto.EXTERNAL:
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "?")
        raise ValueError(f"{label}: its {role} weights {_shown(name)} are external data (location {_shown(location)}); "
                         f"from_onnx does not open files a model names. For a model you trust, load it with "
                         f"onnx.load(path) (which reads its external data) and pass the ModelProto.")
    type_name = TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in TensorProto.DataType.values() \
        else str(tensor.data_type)
    if type_name not in _FLOAT_TYPES:
        raise ValueError(f"{label}: its {role} weights {_shown(name)} have type {type_name}; expected one of "
                         f"{list(_FLOAT_TYPES)}.")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as error:  # noqa: BLE001 (data that disagrees with its dims, in any of onnx's ways)
        raise ValueError(f"{label}: its {role} weights {_shown(name)} cannot be read "
                         f"({type(error).__name__}: {_shown(str(error))}).") from None
    return np.array(array)  # writable, never a view of the model's bytes


# ONNX GRU's attributes: name -> AttributeProto type name.
_GRU_ATTRIBUTES = {"activation_alpha": "FLOATS", "activation_beta": "FLOATS", "activations": "STRINGS",
                   "clip": "FLOAT", "direction": "STRING", "hidden_size": "INT", "layout": "INT",
                   "linear_before_reset": "INT"}
# The most entries of a list attribute: f and g for each of two directions.
_MOST_ENTRIES = 4
# Longest string attribute read ("bidirectional", "HardSigmoid", ...).
_LONGEST_STRING = 64


def _attributes(node, label: str) -> dict[str, Any]:
    """The GRU attributes of ``node``, each checked (name defined once, one of ONNX GRU's,
    of its type, lists of at most 4 entries and strings of at most 64 bytes) from the
    protobuf fields before anything is converted to Python values."""
    from onnx import AttributeProto

    values: dict[str, Any] = {}
    for attribute in node.attribute:
        name = attribute.name
        if name in values:
            raise ValueError(f"{label}: the attribute {_shown(name)} is defined twice; expected each once.")
        if name not in _GRU_ATTRIBUTES:
            raise ValueError(f"{label}: has the attribute {_shown(name)}, which ONNX's GRU does not define "
                             f"(it has {sorted(_GRU_ATTRIBUTES)}).")
        type_name, most = _GRU_ATTRIBUTES[name], _MOST_ENTRIES
        if attribute.type != getattr(AttributeProto, type_name):
            types = AttributeProto.AttributeType
            got = types.Name(attribute.type) if attribute.type in types.values() else attribute.type
            raise ValueError(f"{label}: the attribute {name!r} has type {got}; expected {type_name}.")
        if type_name == "FLOATS":
            if len(attribute.floats) > most:
                raise ValueError(f"{label}: the attribute {name!r} has {len(attribute.floats)} entries; a GRU's "
                                 f"has at most {most} (one per activation).")
            values[name] = list(attribute.floats)
        elif type_name == "STRINGS":
            if len(attribute.strings) > most:
                raise ValueError(f"{label}: the attribute {name!r} has {len(attribute.strings)} entries; a GRU's "
                                 f"has at most {most} (f and g per direction).")
            values[name] = [_string(value) for value in attribute.strings]
        elif type_name == "STRING":
            values[name] = _string(attribute.s)
        elif type_name == "FLOAT":
            values[name] = attribute.f
        else:
            values[name] = attribute.i
    return values


def _string(value: bytes) -> str:
    """A string attribute's bytes as text, cut (for messages) beyond `_LONGEST_STRING`
    bytes: no valid GRU attribute string is that long."""
    return value[:_LONGEST_STRING].decode("utf-8", "replace") + ("..." if len(value) > _LONGEST_STRING else "")


def _node_params(graph, tensors, node, label: str) -> Params | dict[str, Params]:
    attributes = _attributes(node, label)
    if "clip" in attributes:
        raise ValueError(f"{label}: has clip={attributes['clip']!r}; jaxgru's GRU clips no pre-activations, "
                         f"so these weights compute something else in jaxgru.")
    direction = attributes.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{label}: direction={_shown(direction)}; expected 'forward', 'reverse' or "
                         "'bidirectional'.")
    dirs = 2 if direction == "bidirectional" else 1
    activations = attributes.get("activations")
    if activations is not None:
        if len(activations) != 2 * dirs:
            raise ValueError(f"{label}: activations={_shown_list(activations)}; a {direction} GRU has {2 * dirs} "
                             f"(f, g per direction).")
        if any(a.lower() != _DEFAULT_ACTIVATIONS[i % 2] for i, a in enumerate(activations)):
            keras = {onnx_name.lower(): keras_name for keras_name, (onnx_name, _, _) in _ACTIVATIONS.items()}
            hint = [keras.get(a.lower(), "none") for a in activations]
            raise ValueError(f"{label}: activations={activations!r} (activation_alpha="
                             f"{attributes.get('activation_alpha')!r}, activation_beta="
                             f"{attributes.get('activation_beta')!r}) are not ONNX's defaults [Sigmoid, Tanh]; "
                             f"from_onnx returns weights only, which carry no activations. Keras names, where "
                             f"one exists: {hint} (recurrent_activation, activation per direction).")
    reset_after = attributes.get("linear_before_reset", 0) != 0

    names = list(node.input) + [""] * (4 - len(node.input))
    if not names[1] or not names[2]:
        raise ValueError(f"{label}: needs the inputs X, W and R; got {_shown_list(node.input)}.")
    w = _weight(graph, tensors, names[1], "W", label)
    r = _weight(graph, tensors, names[2], "R", label)
    if r.ndim != 3 or r.shape[0] != dirs or r.shape[2] == 0 or r.shape[1] != 3 * r.shape[2]:
        raise ValueError(f"{label}: R has shape {r.shape}; expected [{dirs}, 3*hidden_size, hidden_size] for "
                         f"direction={direction!r}.")
    units = r.shape[2]
    hidden_size = attributes.get("hidden_size")
    if hidden_size is not None and hidden_size != units:
        raise ValueError(f"{label}: hidden_size={hidden_size!r}, but R {r.shape} has hidden_size {units}.")
    if w.ndim != 3 or w.shape[0] != dirs or w.shape[1] != 3 * units or w.shape[2] == 0:
        raise ValueError(f"{label}: W has shape {w.shape}; expected [{dirs}, {3 * units}, input_size] for "
                         f"hidden_size={units}.")
    b = None
    if names[3]:
        b = _weight(graph, tensors, names[3], "B", label)
        if b.shape != (dirs, 6 * units):
            raise ValueError(f"{label}: B has shape {b.shape}; expected {(dirs, 6 * units)} for "
                             f"hidden_size={units}.")
    elif not reset_after:
        warnings.warn(f"{label}: has no B and linear_before_reset=0: its params (no 'bias') need "
                      f"jaxgru.GRUCell({units}, use_bias=False, reset_after=False); with the default "
                      f"reset_after=True they compute another function.", UserWarning, stacklevel=3)
    if direction == "reverse":
        warnings.warn(f"{label}: direction='reverse': run its params with jaxgru.rnn(..., go_backwards=True); "
                      f"ONNX's Y is that output sequence reversed back into input order.", UserWarning,
                      stacklevel=3)

    per_direction = []
    for d in range(dirs):
        params = {"kernel": np.ascontiguousarray(w[d].T), "recurrent_kernel": np.ascontiguousarray(r[d].T)}
        if b is not None:
            wb, rb = b[d, :3 * units], b[d, 3 * units:]
            params["bias"] = np.stack([wb, rb]) if reset_after else wb + rb
        per_direction.append(params)
    if dirs == 2:
        return {"forward": per_direction[0], "backward": per_direction[1]}
    return per_direction[0]


def from_onnx(model_or_path: Any, *, max_bytes: int = DEFAULT_MAX_BYTES,
              max_entries: int | None = None) -> dict[str, Params | dict[str, Params]]:
    """jaxgru params of every ``GRU`` node in an ONNX model's main graph.

    Args:
      model_or_path: an ``onnx.ModelProto`` or the path of an ``.onnx`` file. A file is
        read as untrusted: it must be a regular file of at most ``max_bytes`` bytes,
        its protobuf entries are counted before it is parsed (at most ``max_entries``),
        it is parsed without external data, and weights stored as external data are
        refused (a model names such files itself).
      max_bytes: the largest file read, `DEFAULT_MAX_BYTES` (256 MiB) by default; raise
        it for a larger model you trust. Not used for a ``ModelProto`` (already in memory).
      max_entries: the most protobuf entries (nodes, attributes, names, list items) a
        file may declare; None: `jaxgru.interop.onnx.default_max_entries` of its size,
        ``max(2**18, size // 16)``, which keeps the parse within about 10 times the
        file's size. Raise it for a model you trust that has many small nodes.

    Returns:
      ``{node name: params}`` in node order; a node without a name is ``"GRU_<i>"``, ``i``
      its index among the GRU nodes. The weights are the initializers (an initializer
      that is also a graph input is read as its stored default), or Constant nodes'
      tensors, feeding W, R and B, as numpy arrays of their ONNX type (float32 mostly):

      * a forward node: ``{"kernel" (D, 3U), "recurrent_kernel" (U, 3U), "bias"}`` for
        ``jaxgru.rnn(jaxgru.GRUCell(U, reset_after=bool(linear_before_reset)), ...)``:
        bias ``(2, 3U) = [Wb; Rb]`` for ``linear_before_reset=1``, ``(3U,) = Wb + Rb``
        for 0; no ``"bias"`` without a B input (``use_bias=False``; the params then do
        not show the convention, so a ``linear_before_reset=0`` node warns).
      * a ``"bidirectional"`` node: ``{"forward": params, "backward": params}`` for
        `jaxgru.bidirectional` (``merge_mode=None`` gives ONNX's two directions of ``Y``).
      * a ``"reverse"`` node: one params dict, with a `UserWarning`: run it with
        ``jaxgru.rnn(..., go_backwards=True)`` and flip the outputs over time to get
        ONNX's ``Y`` (which is in input order).

    Params carry no activations, so a node whose ``activations`` are not ONNX's defaults
    (Sigmoid, Tanh in every direction) is an error naming them, rather than weights that
    the default cell would run as another function. ``layout`` does not change the
    weights and is accepted; ``sequence_lens`` and ``initial_h`` are run-time inputs and
    are ignored. Nodes inside subgraphs (If / Loop bodies) are not read.

    The model is checked before its weights are returned: every name is defined once
    (initializers, node outputs such as Constant nodes', graph inputs: a ValueError
    naming it, since onnxruntime would run one of the definitions), a GRU node has only
    ONNX GRU's attributes, each once, of its type and size, and
    ``onnx.checker.check_model`` accepts the model (skipped when a tensor is stored as
    external data, which from_onnx does not read). Error messages quote at most 200
    characters of names and values from the model.

    Raises:
      FileNotFoundError: no file at the path.
      TypeError: neither a ModelProto nor a path; ``max_bytes`` not an integer.
      ValueError: not a readable model or not a regular file; a file over ``max_bytes``
        or declaring more than ``max_entries`` entries; a name defined twice; a model the
        ONNX checker refuses; no GRU node; a node with
        ``clip``, non-default activations, weights that are graph inputs, computed by
        other nodes or external data, or shapes that disagree (with each other, with
        ``direction`` or ``hidden_size``), naming the file (or "model") and the node.
    """
    max_bytes = check_int(max_bytes, "max_bytes")
    if max_bytes <= 0:
        raise ValueError(f"max_bytes: expected a positive number of bytes, got {max_bytes}.")
    if max_entries is not None and check_int(max_entries, "max_entries") <= 0:
        raise ValueError(f"max_entries: expected a positive number of entries, got {max_entries}.")
    model, source = _load(model_or_path, max_bytes, max_entries)
    graph = model.graph
    tensors = _constant_tensors(graph, source)
    grus = [node for node in graph.node if node.op_type == "GRU" and node.domain in ("", "ai.onnx")]
    if not grus:
        raise ValueError(f"{source}: has no GRU node in its main graph (operators: "
                         f"{_shown_list(sorted({node.op_type for node in graph.node}))}).")
    result: dict[str, Any] = {}
    for i, node in enumerate(grus):
        key = node.name or f"GRU_{i}"
        if key in result:
            raise ValueError(f"{source}: two GRU nodes are named {_shown(key)}; from_onnx keys the params by node "
                             "name.")
        result[key] = _node_params(graph, tensors, node, f"{source}: GRU node {_shown(key)}")
    _check_model(model, source)
    return result


def _check_model(model, source: str) -> None:
    """``onnx.checker.check_model``, its failure a ValueError naming ``source``; skipped
    for a model with external data (the checker would look for the files it names)."""
    import onnx.checker
    from onnx import TensorProto

    tensors = list(model.graph.initializer) + [attribute.t for node in model.graph.node
                                               for attribute in node.attribute if attribute.HasField("t")]
    if any(tensor.data_location == TensorProto.EXTERNAL for tensor in tensors):
        return
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:
        raise ValueError(f"{source}: the ONNX checker refuses this model ({_shown(str(error))}).") from None


__getattr__ = module_getattr(__name__)
