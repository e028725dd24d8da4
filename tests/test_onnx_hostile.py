"""Crafted ONNX files and graphs against from_onnx (bounded memory, every name defined once,
only GRU attributes read, short messages), and to_onnx's zero-length rows in onnxruntime."""

import json
import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import assert_close, random_params
from onnx import TensorProto, helper, numpy_helper

import jaxgru
from jaxgru.interop.onnx import from_onnx, to_onnx

D, U, T = 3, 4, 5
CELL = jaxgru.GRUCell(U)
PARAMS = random_params(CELL, D)
LONGEST_MESSAGE = 600  # characters: a few names of at most 200, and the explanation


def _model():
    return to_onnx(CELL, PARAMS)


def _varint(value):
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number, payload):
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _gru_node_with(attribute):
    """A serialized GRU NodeProto over X, W, R with one crafted AttributeProto."""
    inputs = b"".join(_field(1, name) for name in (b"X_time_major", b"W", b"R"))
    return inputs + _field(2, b"Y2") + _field(4, b"GRU") + _field(5, attribute)


def _crafted(entries):
    """The bytes of a valid model followed by a second ModelProto.graph (protobuf merges
    them): ``entries`` million-scale repeated fields of 2 bytes each."""
    n = entries
    return {
        "empty_nodes": _field(7, b"\x0a\x00" * n),
        "ints_attribute": _field(7, _field(1, _gru_node_with(
            _field(1, b"layout") + b"\xa0\x01\x07" + b"\x40\x01" * n))),
        "empty_activations": _field(7, _field(1, _gru_node_with(
            _field(1, b"activations") + b"\xa0\x01\x08" + b"\x4a\x00" * n))),
    }


CHILD = textwrap.dedent("""
    import json, resource, sys
    from jaxgru.interop.onnx import from_onnx

    def vm_size():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))

    cap = vm_size() + 2 ** 30  # 1 GiB of address space beyond what the imports took
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    results = {}
    for path in sys.argv[1:]:
        try:
            from_onnx(path)
            results[path] = ["returned", ""]
        except Exception as error:
            results[path] = [type(error).__name__, str(error)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"growth": peak - baseline, "results": results}))
""")


def test_crafted_files_stay_bounded_in_a_memory_capped_process(tmp_path):
    """Two million 2-byte entries (4 MiB): empty nodes, a GRU node's INTS attribute, its
    activations as empty strings. Parsed, each costs protobuf about 100 bytes (hundreds
    of MiB; gigabytes for 48 MiB files); from_onnx counts them first
    and refuses the file, its peak memory growing by less than the file's size twice
    plus 64 MiB, in a child process whose address space is capped."""
    base = _model().SerializeToString()
    paths = []
    for name, tail in _crafted(2 * 2 ** 20).items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(base + tail)
        paths.append(str(path))
    size = max(os.path.getsize(p) for p in paths)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for path in paths:
        kind, message = report["results"][path]
        assert kind == "ValueError", (path, kind, message[:300])
        assert re.search(r"declares more than \d+ protobuf entries.*pass a larger max_entries=", message)
        assert len(message) < LONGEST_MESSAGE
    assert report["growth"] < 2 * size + 64 * 2 ** 20, report["growth"]


def test_size_cap_and_raising_it(tmp_path):
    path = tmp_path / "model.onnx"
    data = _model().SerializeToString()
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"model.onnx: {len(data)} bytes, more than max_bytes=100 .*"
                                         r"DEFAULT_MAX_BYTES = 268435456.*pass a larger max_bytes="):
        from_onnx(path, max_bytes=100)
    with pytest.raises(ValueError, match="declares more than 10 protobuf entries.*larger max_entries="):
        from_onnx(path, max_entries=10)
    jax.tree.map(np.testing.assert_array_equal, from_onnx(path, max_bytes=len(data))["gru"],
                 from_onnx(_model())["gru"])
    # many small nodes: refused by the default count, read with max_entries raised
    many = _model()
    many.graph.node.extend(helper.make_node("Identity", ["X"], [f"copy_{i}"]) for i in range(70000))
    path.write_bytes(many.SerializeToString())
    with pytest.raises(ValueError, match="declares more than 262144 protobuf entries"):
        from_onnx(path)
    assert list(from_onnx(path, max_entries=2 ** 20)) == ["gru"]
    for bad, error in ((0, ValueError), ("1e9", TypeError), (1.5, TypeError)):
        with pytest.raises(error, match="max_bytes: expected"):
            from_onnx(path, max_bytes=bad)


# ------------------------------------------------------------------ names defined twice
def _duplicated(kind):
    model = _model()
    w = model.graph.initializer[0]
    other = numpy_helper.from_array(numpy_helper.to_array(w) + 1.0, w.name)
    if kind == "initializer":
        model.graph.initializer.append(other)
    elif kind == "constant":
        model.graph.node.insert(0, helper.make_node("Constant", [], [w.name], value=other))
    elif kind == "two constants":
        del model.graph.initializer[0]
        for value in (w, other):
            model.graph.node.insert(0, helper.make_node("Constant", [], [w.name], value=value))
    elif kind == "graph input":
        model.graph.input.append(model.graph.input[0])
    return model


@pytest.mark.parametrize("kind,match", [
    ("initializer", "the initializer 'W' is defined twice"),
    ("constant", r"'W' is the output of node '' \('Constant'\) and also an initializer"),
    ("two constants", r"'W' is the output of node '' \('Constant'\) and also another node's output"),
    ("graph input", "the graph input 'X' is declared twice"),
])
def test_a_name_defined_twice_is_refused(kind, match, tmp_path):
    """onnxruntime runs one of the two definitions (the reader used to return the other:
    weights off by 1 here), so neither is read."""
    model = _duplicated(kind)
    path = tmp_path / "twice.onnx"
    path.write_bytes(model.SerializeToString())
    for source in (model, path):
        with pytest.raises(ValueError, match=match):
            from_onnx(source)


def test_an_initializer_that_is_also_a_graph_input_is_its_default():
    """ONNX's IR < 4 lists every initializer as a graph input: one definition, read."""
    model = _model()
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [1, 3 * U, D]))
    jax.tree.map(np.testing.assert_array_equal, from_onnx(model)["gru"], from_onnx(_model())["gru"])


def test_the_onnx_checker_runs():
    model = _model()
    model.ir_version = 0
    with pytest.raises(ValueError, match=r"model: the ONNX checker refuses this model \(.*ir_version"):
        from_onnx(model)


# ------------------------------------------------------------------ attributes
def _with_attributes(*attributes, replace=()):
    model = _model()
    node = next(n for n in model.graph.node if n.op_type == "GRU")
    kept = [a for a in node.attribute if a.name not in replace]
    del node.attribute[:]
    node.attribute.extend(kept + list(attributes))
    return model


@pytest.mark.parametrize("attributes,replace,match", [
    ([helper.make_attribute("hidden_size", U), helper.make_attribute("hidden_size", U + 1)], ("hidden_size",),
     "the attribute 'hidden_size' is defined twice"),
    ([helper.make_attribute("hidden_size", float(U))], ("hidden_size",),
     "the attribute 'hidden_size' has type FLOAT; expected INT"),
    ([helper.make_attribute("x" * 10 ** 6, [1, 2])], (), r"has the attribute 'xxxx.*\(1000002 characters\), which "
                                                        "ONNX's GRU does not define"),
    ([helper.make_attribute("activations", [""] * 1000)], ("activations",),
     "'activations' has 1000 entries; a GRU's has at most 4"),
    ([helper.make_attribute("activation_alpha", [0.5] * 1000)], (), "'activation_alpha' has 1000 entries"),
    ([helper.make_attribute("direction", "b" * 10 ** 6)], ("direction",), r"direction='bbbb.*\.\.\.'; expected"),
    ([helper.make_attribute("activations", ["Relu" * 10 ** 5, "Tanh"])], ("activations",),
     r"activations=\['ReluRelu.*\.\.\.', 'Tanh'\].*not ONNX's defaults"),
])
def test_attributes_are_checked_before_they_are_read(attributes, replace, match):
    """Only ONNX GRU's attributes, once each, of their type; lists of at most 4 entries
    (f and g per direction) and strings cut before they are read; messages stay short."""
    with pytest.raises(ValueError, match=match) as error:
        from_onnx(_with_attributes(*attributes, replace=replace))
    assert len(str(error.value)) < LONGEST_MESSAGE


def test_long_names_are_cut_in_messages():
    model = _model()
    node = next(n for n in model.graph.node if n.op_type == "GRU")
    node.name = "n" * 10 ** 6
    node.input[2] = "r" * 10 ** 6
    with pytest.raises(ValueError, match=r"its R input 'rrrr.*\(1000002 characters\) is the output") as error:
        from_onnx(model)
    assert len(str(error.value)) < LONGEST_MESSAGE
    operators = _model()
    operators.graph.node.extend(helper.make_node(f"Op{i}", [], [f"o{i}"], domain="custom") for i in range(1000))
    del operators.graph.node[:4]
    with pytest.raises(ValueError, match=r"has no GRU node .*'Op104', \.\.\.and 992 more\]") as error:
        from_onnx(operators)
    assert len(str(error.value)) < LONGEST_MESSAGE


# ------------------------------------------------------------------ to_onnx: rows of length 0
@pytest.mark.parametrize("bidirectional,batch_first", [(False, True), (True, False)])
def test_rows_of_length_zero_keep_initial_h_in_onnxruntime(bidirectional, batch_first):
    """jaxgru.rnn returns a zero-length row's initial state; onnxruntime's GRU alone
    returns zeros there (off by 1.1 before the Where node was added)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, T, D)).astype(np.float32)
    lengths = np.array([T, 0, 2, 0], np.int32)
    dirs = 1 + bidirectional
    h0 = rng.normal(size=(4, dirs, U)).astype(np.float32)
    params = {"forward": random_params(CELL, D, 0), "backward": random_params(CELL, D, 3)} if bidirectional else \
        PARAMS
    model = to_onnx(CELL, params, bidirectional=bidirectional, batch_first=batch_first, sequence_lens=True,
                    initial_h=True)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    if batch_first:
        y, y_h = session.run(None, {"X": x, "sequence_lens": lengths, "initial_h": h0})
    else:
        y, y_h = session.run(None, {"X": x.transpose(1, 0, 2), "sequence_lens": lengths,
                                    "initial_h": h0.transpose(1, 0, 2)})
        y, y_h = y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2)
    if bidirectional:
        outputs, finals = jaxgru.bidirectional(CELL, params, x, merge_mode=None, seq_lengths=lengths,
                                               initial_state=(h0[:, 0], h0[:, 1]))
    else:
        output, final = jaxgru.rnn(CELL, params, x, seq_lengths=lengths, initial_state=h0[:, 0],
                                   zero_output_for_mask=True)
        outputs, finals = (output,), (final,)
    for d in range(dirs):
        assert_close(y[:, :, d], outputs[d], atol=1e-5, rtol=1e-5)
        assert_close(y_h[:, d], finals[d], atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(y_h[lengths == 0, d], h0[lengths == 0, d])
