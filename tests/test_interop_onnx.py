"""to_onnx / from_onnx against onnxruntime running ONNX's native GRU operator."""

import functools
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import assert_close, random_params
from onnx import TensorProto, helper, numpy_helper

import jaxgru
from jaxgru.interop.onnx import from_onnx, to_onnx

D, U, B, T = 3, 4, 2, 5
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, D)).astype(np.float32)


def run(model, **feeds):
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# float32 agreement: 1e-5 absolute, relative where unbounded activations grow the state.
close = functools.partial(assert_close, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ to_onnx in onnxruntime
@pytest.mark.parametrize("reset_after,use_bias,batch_first", [
    (True, True, True), (False, True, False), (True, False, False), (False, False, True)])
def test_forward_matches_rnn(reset_after, use_bias, batch_first):
    cell = jaxgru.GRUCell(U, reset_after=reset_after, use_bias=use_bias)
    params = random_params(cell, D)
    model = to_onnx(cell, params, batch_first=batch_first)
    assert [n.op_type for n in model.graph.node].count("GRU") == 1
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    assert helper.get_attribute_value(next(a for a in gru.attribute if a.name == "linear_before_reset")) == reset_after
    assert ("B" in gru.input) == use_bias
    outputs, final = jaxgru.rnn(cell, params, X)
    if batch_first:
        y, y_h = run(model, X=X)
        close(y[:, :, 0], outputs)
        close(y_h[:, 0], final)
    else:
        y, y_h = run(model, X=X.transpose(1, 0, 2))
        close(y[:, 0], outputs.transpose(1, 0, 2))
        close(y_h[0], final)


@pytest.mark.parametrize("reset_after,batch_first", [(True, False), (False, True)])
def test_bidirectional_matches(reset_after, batch_first):
    # a mixed activation pair also checks the alpha/beta order over four activations
    cell = jaxgru.GRUCell(U, reset_after=reset_after, recurrent_activation="hard_sigmoid", activation="leaky_relu")
    params = {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 5)}
    model = to_onnx(cell, params, bidirectional=True, batch_first=batch_first)
    (out_fw, out_bw), (h_fw, h_bw) = jaxgru.bidirectional(cell, params, X, merge_mode=None)
    if batch_first:
        y, y_h = run(model, X=X)
        close(y[:, :, 0], out_fw), close(y[:, :, 1], out_bw)
        close(y_h[:, 0], h_fw), close(y_h[:, 1], h_bw)
    else:
        y, y_h = run(model, X=X.transpose(1, 0, 2))
        close(y[:, 0], out_fw.transpose(1, 0, 2)), close(y[:, 1], out_bw.transpose(1, 0, 2))
        close(y_h[0], h_fw), close(y_h[1], h_bw)


# Every mapped name as f and as g, including a non-consumer before an alpha consumer.
ACTIVATION_PAIRS = [("sigmoid", "tanh"), ("tanh", "relu"), ("relu", "linear"), ("linear", "hard_sigmoid"),
                    ("hard_sigmoid", "softsign"), ("softsign", "softplus"), ("softplus", "elu"),
                    ("elu", "leaky_relu"), ("leaky_relu", None), (None, "sigmoid"), ("sigmoid", "leaky_relu")]


@pytest.mark.parametrize("recurrent_activation,activation", ACTIVATION_PAIRS)
def test_activation_pairs_match(recurrent_activation, activation):
    cell = jaxgru.GRUCell(U, recurrent_activation=recurrent_activation, activation=activation)
    params = random_params(cell, D)
    y, y_h = run(to_onnx(cell, params), X=X)
    outputs, final = jaxgru.rnn(cell, params, X)
    close(y[:, :, 0], outputs)
    close(y_h[:, 0], final)


@pytest.mark.parametrize("bidirectional,batch_first", [(False, True), (True, False)])
def test_sequence_lens_and_initial_h(bidirectional, batch_first):
    cell = jaxgru.GRUCell(U, reset_after=not bidirectional)
    lengths = np.array([T, 2], np.int32)
    h0 = RNG.normal(size=(B, 1 + bidirectional, U)).astype(np.float32)
    model = to_onnx(cell, {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 3)}
                    if bidirectional else random_params(cell, D), bidirectional=bidirectional,
                    batch_first=batch_first, sequence_lens=True, initial_h=True)
    assert [i.name for i in model.graph.input] == ["X", "sequence_lens", "initial_h"]
    if batch_first:
        y, y_h = run(model, X=X, sequence_lens=lengths, initial_h=h0)
    else:
        y, y_h = run(model, X=X.transpose(1, 0, 2), sequence_lens=lengths, initial_h=h0.transpose(1, 0, 2))
        y, y_h = y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2)  # to [B, T, dirs, U], [B, dirs, U]
    params = from_onnx(model)["gru"]
    if bidirectional:
        outputs, finals = jaxgru.bidirectional(cell, params, X, merge_mode=None, seq_lengths=lengths,
                                               initial_state=(h0[:, 0], h0[:, 1]))
    else:
        output, final = jaxgru.rnn(cell, params, X, seq_lengths=lengths, initial_state=h0[:, 0],
                                   zero_output_for_mask=True)
        outputs, finals = (output,), (final,)
    for d in range(1 + bidirectional):
        close(y[:, :, d], outputs[d])
        close(y_h[:, d], finals[d])
    assert not np.any(y[1, 2:])  # ONNX's Y is zeros past each length


def test_models_are_float32():
    cell = jaxgru.GRUCell(U)
    params = random_params(cell, D, dtype=np.float64)
    model = to_onnx(cell, params)
    assert {t.data_type for t in model.graph.initializer} == {TensorProto.FLOAT}
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    back = from_onnx(model)["gru"]
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b, np.float32)), back, params)
    half = to_onnx(cell, random_params(cell, D, dtype=jnp.bfloat16))
    assert {t.data_type for t in half.graph.initializer} == {TensorProto.FLOAT}


def test_model_shape_and_opset():
    cell = jaxgru.GRUCell(U)
    model = to_onnx(cell, random_params(cell, D))
    assert model.opset_import[0].version == 17
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", D]
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    assert all(a.name != "layout" for a in gru.attribute)  # onnxruntime runs only layout=0: Transposes instead
    assert to_onnx(cell, random_params(cell, D), opset=21).opset_import[0].version == 21


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("reset_after,use_bias,bidirectional", [
    (True, True, False), (False, True, True), (True, False, True), (False, False, False)])
def test_round_trip_is_exact(reset_after, use_bias, bidirectional):
    cell = jaxgru.GRUCell(U, reset_after=reset_after, use_bias=use_bias)
    params = ({"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 7)} if bidirectional
              else random_params(cell, D))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = from_onnx(to_onnx(cell, params, bidirectional=bidirectional))
    # bias-free reset_after=False params do not show their convention: a warning says it
    assert len(caught) == (not use_bias and not reset_after)
    assert list(back) == ["gru"]
    back = back["gru"]
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), back, params)
    assert jax.tree.structure(back) == jax.tree.structure(params)


# ------------------------------------------------------------------ independent ONNX GRUs
def onnx_gru(direction, linear_before_reset, with_bias=True, name="", seed=0, **attributes):
    """A one-node ONNX GRU with random W, R and nonzero Wb, Rb, time-major."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    weights = {"W": rng.normal(size=(dirs, 3 * U, D)), "R": rng.normal(size=(dirs, 3 * U, U)) / 2}
    if with_bias:
        weights["B"] = rng.normal(size=(dirs, 6 * U))
    attributes = {"hidden_size": U, "direction": direction, "linear_before_reset": linear_before_reset,
                  **attributes}
    node = helper.make_node("GRU", ["X", "W", "R", "B" if with_bias else ""], ["Y", "Y_h"], name=name, **attributes)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["time", "batch", D])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["time", dirs, "batch", U]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [dirs, "batch", U])],
        [numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("direction,linear_before_reset", [
    ("forward", 0), ("forward", 1), ("bidirectional", 0), ("bidirectional", 1)])
def test_independent_onnx_gru_from_file(tmp_path, direction, linear_before_reset):
    model = onnx_gru(direction, linear_before_reset, name="encoder")
    path = tmp_path / "gru.onnx"
    onnx.save(model, path)
    y, y_h = run(model, X=X.transpose(1, 0, 2))
    cell = jaxgru.GRUCell(U, reset_after=bool(linear_before_reset))
    params = from_onnx(path)["encoder"]
    for source in (str(path), model):
        jax.tree.map(np.testing.assert_array_equal, from_onnx(source)["encoder"], params)
    if direction == "forward":
        assert params["bias"].shape == ((2, 3 * U) if linear_before_reset else (3 * U,))
        outputs, final = jaxgru.rnn(cell, params, X, time_major=False)
        close(y[:, 0].transpose(1, 0, 2), outputs)
        close(y_h[0], final)
    else:
        (out_fw, out_bw), (h_fw, h_bw) = jaxgru.bidirectional(cell, params, X, merge_mode=None)
        close(y[:, 0].transpose(1, 0, 2), out_fw), close(y[:, 1].transpose(1, 0, 2), out_bw)
        close(y_h[0], h_fw), close(y_h[1], h_bw)


def test_reverse_node_runs_backwards_and_warns():
    model = onnx_gru("reverse", 1)
    y, y_h = run(model, X=X.transpose(1, 0, 2))
    with pytest.warns(UserWarning, match="'GRU_0': direction='reverse'.*go_backwards=True"):
        params = from_onnx(model)["GRU_0"]
    outputs, final = jaxgru.rnn(jaxgru.GRUCell(U), params, X, go_backwards=True)
    close(y[:, 0].transpose(1, 0, 2), outputs[:, ::-1])
    close(y_h[0], final)


def test_constant_nodes_unnamed_nodes_and_no_bias():
    model = onnx_gru("forward", 0, with_bias=False)
    y, y_h = run(model, X=X.transpose(1, 0, 2))
    weights = list(model.graph.initializer)
    del model.graph.initializer[:]
    for tensor in weights:
        model.graph.node.insert(0, helper.make_node("Constant", [], [tensor.name], value=tensor))
    second = helper.make_node("GRU", ["X", "W", "R"], ["Y2", "Y_h2"], hidden_size=U, linear_before_reset=1)
    model.graph.node.append(second)
    with pytest.warns(UserWarning, match=r"GRU_0': has no B.*GRUCell\(4, use_bias=False, reset_after=False\)"):
        params = from_onnx(model)
    assert list(params) == ["GRU_0", "GRU_1"] and "bias" not in params["GRU_0"]
    outputs, final = jaxgru.rnn(jaxgru.GRUCell(U, use_bias=False, reset_after=False), params["GRU_0"], X)
    close(y[:, 0].transpose(1, 0, 2), outputs)
    close(y_h[0], final)


# ------------------------------------------------------------------ bad input
CELL = jaxgru.GRUCell(U)
PARAMS = random_params(CELL, D)


@pytest.mark.parametrize("argument,kwargs,value", [
    ("cell.activation", {"activation": "gelu"}, "'gelu'"),
    ("cell.recurrent_activation", {"recurrent_activation": "swish"}, "'swish'"),
    ("cell.activation", {"activation": jax.nn.tanh}, "the callable"),
])
def test_unmappable_activations(argument, kwargs, value):
    cell = jaxgru.GRUCell(U, **kwargs)
    with pytest.raises(ValueError, match=rf"^{argument}: {value}.*'hard_sigmoid'.*'softsign'"):
        to_onnx(cell, PARAMS)


def test_dropout_is_left_out_silently():
    cell = jaxgru.GRUCell(U, dropout=0.3, recurrent_dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = to_onnx(cell, PARAMS)
    assert model.SerializeToString() == to_onnx(CELL, PARAMS).SerializeToString()


def test_wrong_params_and_arguments():
    with pytest.raises(ValueError, match=r"params\['bias'\]: expected shape \(2, 12\)"):
        to_onnx(jaxgru.GRUCell(U), random_params(jaxgru.GRUCell(U, reset_after=False), D))
    with pytest.raises(ValueError, match="pass bidirectional=True"):
        to_onnx(CELL, {"forward": PARAMS, "backward": PARAMS})
    with pytest.raises(ValueError, match=r"params: expected \{'forward'"):
        to_onnx(CELL, PARAMS, bidirectional=True)
    with pytest.raises(ValueError, match=r"params\['backward'\]: params: missing 'bias'"):
        to_onnx(CELL, {"forward": PARAMS, "backward": {k: PARAMS[k] for k in ("kernel", "recurrent_kernel")}},
                bidirectional=True)
    with pytest.raises(TypeError, match="cell: expected a jaxgru.GRUCell"):
        to_onnx("gru", PARAMS)
    with pytest.raises(TypeError, match="batch_first: expected a bool"):
        to_onnx(CELL, PARAMS, batch_first=1)
    with pytest.raises(ValueError, match="opset: expected an ONNX opset from 14"):
        to_onnx(CELL, PARAMS, opset=11)


def test_models_without_a_usable_gru():
    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])
    with pytest.raises(ValueError, match=r"model: has no GRU node.*\['Relu'\]"):
        from_onnx(helper.make_model(graph))
    with pytest.raises(ValueError, match="'GRU_0': has clip=3.0"):
        from_onnx(onnx_gru("forward", 1, clip=3.0))
    with pytest.raises(ValueError, match=r"'GRU_0': activations=\['Relu', 'Tanh'\].*\['relu', 'tanh'\]"):
        from_onnx(onnx_gru("forward", 1, activations=["Relu", "Tanh"]))
    with pytest.raises(ValueError, match="hidden_size=5, but R"):
        from_onnx(onnx_gru("forward", 1, name="g", hidden_size=5))
    as_input = onnx_gru("forward", 1)
    as_input.graph.input.append(helper.make_tensor_value_info("R2", TensorProto.FLOAT, [1, 3 * U, U]))
    as_input.graph.node[0].input[2] = "R2"
    with pytest.raises(ValueError, match="its R input 'R2' is the graph input"):
        from_onnx(as_input)


def test_hostile_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="not a regular file"):
        from_onnx(tmp_path)
    (tmp_path / "junk.onnx").write_bytes(b"\xff\x00 not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a readable ONNX model"):
        from_onnx(tmp_path / "junk.onnx")
    with pytest.raises(TypeError, match="model_or_path: expected an onnx.ModelProto or a file path"):
        from_onnx(b"bytes")
    # weights that name a file outside the model's folder: refused, never opened
    model = onnx_gru("forward", 1)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../secret")
    path = tmp_path / "external.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match=r"'GRU_0': its W weights 'W' are external data.*'\.\./\.\./secret'"):
        from_onnx(path)


def test_missing_onnx_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="pip install onnx"):
        to_onnx(CELL, PARAMS)
    with pytest.raises(ImportError, match="pip install onnx"):
        from_onnx("model.onnx")
