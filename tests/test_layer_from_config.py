"""layer_from_config against real tf_keras and Keras 3 GRU and Bidirectional(GRU) layers.

Each layer is built, given random weights, and run; `jaxgru.rnn` (or
`jaxgru.bidirectional`) with the cell and options read from the layer's config and the
params from its ``get_weights()`` must give the layer's outputs and final states.
"""

import functools
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
import jaxgru
from jaxgru.interop.keras_layers import layer_from_config
from keras_reference import randomize
from references import keras, keras3, HEAVY

B, T, D, U = 3, 5, 4, 6
X = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
# right, left and mixed padding (tf_keras's standard kernel and Keras 3 without cuDNN take any mask)
MASK = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
RIGHT_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)


def run_keras(layer, x, mask, seed=0):
    """Builds ``layer`` on ``x``, gives it random weights, and returns its outputs as numpy."""
    layer(x, mask=mask)
    randomize(layer, seed)
    return [np.asarray(y) for y in layer(x, mask=mask)]


assert_close = functools.partial(helpers.assert_close, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- GRU
DEFAULT_OPTIONS = dict(return_sequences=False, go_backwards=False, time_major=False, zero_output_for_mask=False,
                       unroll=1)

TF_KERAS_GRUS = [
    (dict(return_sequences=True), None),
    (dict(return_sequences=True, go_backwards=True, reset_after=False, implementation=1, activation="relu",
          recurrent_activation="hard_sigmoid", zero_output_for_mask=True), MASK),
    (dict(time_major=True, use_bias=False, unroll=True, kernel_initializer="he_normal", recurrent_regularizer="l2",
          kernel_constraint="max_norm", recurrent_initializer="lecun_uniform"), MASK),
    (dict(return_sequences=True, dropout=0.3, recurrent_dropout=0.2, implementation=0, bias_initializer="ones",
          kernel_regularizer="l1", bias_regularizer="l1_l2", recurrent_constraint="unit_norm",
          bias_constraint="non_neg"), MASK),
    (dict(go_backwards=True, activation=None, recurrent_activation="softsign", stateful=False), MASK),
]


@HEAVY
@pytest.mark.parametrize("options,mask", TF_KERAS_GRUS, ids=lambda o: ",".join(o) if isinstance(o, dict) else "")
def test_tf_keras_gru(options, mask):
    layer = keras.layers.GRU(U, return_state=True, **options)
    time_major = options.get("time_major", False)
    x = X.swapaxes(0, 1) if time_major else X
    mask = None if mask is None else (mask.T if time_major else mask)
    expected_out, expected_state = run_keras(layer, x, mask)
    cell, rnn_options = layer_from_config(layer.get_config())
    assert rnn_options == {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if k in DEFAULT_OPTIONS},
                           "unroll": True if options.get("unroll") else 1}
    cell_config = layer.cell.get_config()
    if cell_config["implementation"] == 0:
        cell_config["implementation"] = 1  # as tf_keras's GRU.from_config reads it
    assert cell == jaxgru.GRUCell.from_config(cell_config)
    params = jaxgru.from_keras(layer.get_weights(), cell=cell)
    outputs, final = jaxgru.rnn(cell, params, jnp.asarray(x), mask=mask, **rnn_options)
    assert_close(outputs, expected_out)
    assert_close(final, expected_state)
    # the serialized form reads the same
    assert layer_from_config(keras.utils.serialize_keras_object(layer)) == (cell, rnn_options)
    assert layer_from_config(json.loads(json.dumps(layer.get_config()))) == (cell, rnn_options)


KERAS_3_GRUS = [
    (dict(return_sequences=True, zero_output_for_mask=True, kernel_regularizer="l2"), RIGHT_MASK),
    (dict(return_sequences=True, go_backwards=True, unroll=True, reset_after=False, use_cudnn=False,
          dropout=0.1, activation="gelu"), MASK),
    (dict(stateful=False, seed=7, recurrent_initializer="identity", use_cudnn=False), MASK),
]


@HEAVY
@pytest.mark.parametrize("options,mask", KERAS_3_GRUS, ids=lambda o: ",".join(o) if isinstance(o, dict) else "")
def test_keras_3_gru(options, mask):
    layer = keras3.layers.GRU(U, return_state=True, **options)
    expected_out, expected_state = run_keras(layer, X, mask, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a seed without dropout (or dropout without a seed) is silent
        cell, rnn_options = layer_from_config(layer.get_config())
    assert rnn_options == {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if k in DEFAULT_OPTIONS},
                           "unroll": True if options.get("unroll") else 1}
    outputs, final = jaxgru.rnn(cell, jaxgru.from_keras(layer.get_weights(), cell=cell), X, mask=mask,
                                **rnn_options)
    assert_close(outputs, expected_out)
    assert_close(final, expected_state)
    serialized = keras3.saving.serialize_keras_object(layer)
    assert "build_config" in serialized
    assert layer_from_config(json.loads(json.dumps(serialized))) == (cell, rnn_options)


@HEAVY
def test_keras_3_hard_sigmoid_is_keras_3s():
    # Keras 3's hard_sigmoid is relu6(x + 3) / 6; tf_keras's (jaxgru's name) clip(0.2 x + 0.5, 0, 1)
    layer = keras3.layers.GRU(U, return_sequences=True, return_state=True, recurrent_activation="hard_sigmoid",
                              activation={"module": "keras.activations", "class_name": "function",
                                          "config": "hard_sigmoid", "registered_name": "hard_sigmoid"})
    expected_out, expected_state = run_keras(layer, X, MASK, seed=4)
    cell, options = layer_from_config(layer.get_config())
    assert cell.activation is cell.recurrent_activation is jax.nn.hard_sigmoid
    assert jaxgru.GRUCell.from_config(layer.cell.get_config()) == cell
    outputs, final = jaxgru.rnn(cell, jaxgru.from_keras(layer.get_weights()), X, mask=MASK, **options)
    assert_close(outputs, expected_out)
    assert_close(final, expected_state)
    tf_cell, _ = layer_from_config(keras.layers.GRU(U, recurrent_activation="hard_sigmoid").get_config())
    assert tf_cell.recurrent_activation == "hard_sigmoid"


@HEAVY
def test_layer_of_a_model_config():
    inputs = keras3.Input((T, D))
    model = keras3.Model(inputs, keras3.layers.GRU(U, go_backwards=True, name="g")(inputs))
    entry = next(layer for layer in model.get_config()["layers"] if layer["class_name"] == "GRU")
    cell, options = layer_from_config(entry)
    assert cell == jaxgru.GRUCell(U) and options == {**DEFAULT_OPTIONS, "go_backwards": True}


@HEAVY
def test_keys_without_a_jaxgru_meaning_are_accepted():
    base = layer_from_config(keras.layers.GRU(U).get_config())
    assert layer_from_config(keras.layers.GRU(U, stateful=True, return_state=True).get_config()) == base
    assert layer_from_config(keras.layers.GRU(U, dtype="mixed_float16", name="x", trainable=False,
                                              input_shape=(T, D)).get_config()) == base
    assert layer_from_config(keras3.layers.GRU(U, dtype="mixed_bfloat16", use_cudnn=True).get_config()) == base
    assert layer_from_config({**keras3.layers.GRU(U).get_config(), "use_cudnn": "auto",
                              "batch_shape": [None, T, D]}) == base


# ---------------------------------------------------------------- Bidirectional
def tf_keras_bidirectional(merge_mode, backward=None, **options):
    layer = keras.layers.GRU(U, return_state=True, **options)
    backward_layer = (None if backward is None else keras.layers.GRU(
        **{"units": U, "return_state": True, "go_backwards": True, **options, **backward}))
    return keras.layers.Bidirectional(layer, merge_mode=merge_mode, backward_layer=backward_layer)


def keras_3_bidirectional(merge_mode, backward=None, **options):
    layer = keras3.layers.GRU(U, return_state=True, **options)
    backward_layer = (None if backward is None else keras3.layers.GRU(
        **{"units": U, "return_state": True, "go_backwards": True, **options, **backward}))
    return keras3.layers.Bidirectional(layer, merge_mode=merge_mode, backward_layer=backward_layer)


BIDIRECTIONALS = [
    (tf_keras_bidirectional, "concat", dict(activation="relu", reset_after=False, units=U + 2),
     dict(return_sequences=True), MASK),
    (tf_keras_bidirectional, None, None, dict(), MASK),
    (tf_keras_bidirectional, "sum", None, dict(return_sequences=True, time_major=True, implementation=1), MASK),
    (keras_3_bidirectional, "ave", dict(recurrent_activation="hard_sigmoid", use_bias=False),
     dict(return_sequences=True, use_cudnn=False), MASK),
    (keras_3_bidirectional, "mul", None, dict(return_sequences=True, unroll=True), None),
]


@HEAVY
@pytest.mark.parametrize("make,merge_mode,backward,options,mask", BIDIRECTIONALS,
                         ids=lambda o: o.__name__ if callable(o) else str(o))
def test_bidirectional(make, merge_mode, backward, options, mask):
    layer = make(merge_mode, backward, **options)
    time_major = options.get("time_major", False)
    x = X.swapaxes(0, 1) if time_major else X
    mask = None if mask is None else (mask.T if time_major else mask)
    expected = run_keras(layer, x, mask, seed=2)
    (forward, backward_cell), rnn_options = layer_from_config(layer.get_config())
    assert rnn_options == dict(merge_mode=merge_mode, return_sequences=options.get("return_sequences", False),
                               time_major=time_major, unroll=True if options.get("unroll") else 1)
    assert (forward == backward_cell) == (backward is None)
    params = {"forward": jaxgru.from_keras(layer.forward_layer.get_weights(), cell=forward),
              "backward": jaxgru.from_keras(layer.backward_layer.get_weights(), cell=backward_cell)}
    outputs, finals = jaxgru.bidirectional((forward, backward_cell), params, x, mask=mask, **rnn_options)
    actual = [*(outputs if merge_mode is None else [outputs]), *finals]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert_close(a, e)


@HEAVY
def test_bidirectional_serialized_forms():
    layer = keras3.layers.Bidirectional(keras3.layers.GRU(U, return_sequences=True), merge_mode="sum")
    layer.build((None, T, D))
    expected = layer_from_config(layer.get_config())
    assert layer_from_config(json.loads(json.dumps(keras3.saving.serialize_keras_object(layer)))) == expected
    tf_layer = keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=True), merge_mode="sum")
    assert layer_from_config(keras.utils.serialize_keras_object(tf_layer)) == expected


# ---------------------------------------------------------------- seed
@HEAVY
def test_cell_seed_warns_only_with_active_dropout():
    for options in (dict(seed=3, dropout=0.2), dict(seed=3, recurrent_dropout=0.5)):
        config = keras3.layers.GRUCell(U, **options).get_config()
        with pytest.warns(UserWarning, match=r"config\['seed'\]=3: .*rng key passed to step/rnn.*does not map"):
            cell = jaxgru.GRUCell.from_config(config)
        assert cell == jaxgru.GRUCell(U, **{k: v for k, v in options.items() if k != "seed"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for options in (dict(seed=3), dict(dropout=0.2), dict(seed=3, dropout=0.0, recurrent_dropout=0.0)):
            jaxgru.GRUCell.from_config(keras3.layers.GRUCell(U, **options).get_config())


@HEAVY
def test_layer_seed_warns_at_the_caller():
    with pytest.warns(UserWarning, match=r"config\['seed'\]=5: .*jaxgru.rnn") as record:
        layer_from_config(keras3.layers.GRU(U, seed=5, dropout=0.2).get_config())
    assert len(record) == 1 and record[0].filename == __file__
    with pytest.warns(UserWarning, match=r"config\['(layer|backward_layer)'\]\['seed'\]=5") as record:
        layer_from_config(keras3.layers.Bidirectional(keras3.layers.GRU(U, seed=5, recurrent_dropout=0.1))
                          .get_config())
    assert len(record) == 2 and {w.filename for w in record} == {__file__}


# ---------------------------------------------------------------- errors
def gru_config():
    return keras.layers.GRU(U).get_config()


# Each config is built when the test runs (tf_keras's configs, not imported at collection).
@HEAVY
@pytest.mark.parametrize("config,error,message", [
    (lambda: "GRU", TypeError, "config: expected a Keras layer config dict, got str"),
    (lambda: None, TypeError, "got NoneType"),
    (lambda: {"class_name": "LSTM", "config": keras.layers.LSTM(U).get_config()}, ValueError, "class_name 'LSTM'"),
    (lambda: keras.layers.LSTM(U).get_config(), ValueError, r"unknown keys \['unit_forget_bias'\]"),
    (lambda: {**gru_config(), "foo": 1}, ValueError, r"unknown keys \['foo'\] for a Keras GRU layer"),
    (lambda: {**gru_config(), "activity_regularizer": "l2"}, ValueError, r"config\['activity_regularizer'\]: 'l2'"),
    (lambda: {**gru_config(), "return_sequences": "yes"}, TypeError, r"config\['return_sequences'\]: expected a bool"),
    (lambda: {**gru_config(), "use_cudnn": "maybe"}, ValueError, r"config\['use_cudnn'\]"),
    (lambda: {**gru_config(), "units": 0}, ValueError, "config: units"),
    (lambda: {k: v for k, v in gru_config().items() if k != "units"}, ValueError, "missing 'units'"),
    (lambda: {"class_name": "GRU"}, ValueError, r"config\['config'\]: expected the layer's config dict"),
    (lambda: {"class_name": "GRU", "config": gru_config(), "extra": 1}, ValueError, r"unknown keys \['extra'\]"),
    (lambda: {"layer": "GRU"}, TypeError, r"config\['layer'\]: expected a Keras layer config dict"),
    (lambda: {"layer": {"class_name": "GRU", "config": gru_config()}, "merge_mode": "max"}, ValueError,
     r"config\['merge_mode'\]: expected one of"),
    (lambda: {"layer": {"class_name": "GRU", "config": gru_config()}, "num_constants": 1}, ValueError,
     r"unknown keys \['num_constants'\] for a Keras Bidirectional"),
    (lambda: {"merge_mode": "sum", "layer": {"class_name": "GRU", "config": gru_config()},
      "backward_layer": {"class_name": "GRU", "config": {**gru_config(), "units": U + 1, "go_backwards": True}}},
     ValueError, "'sum' needs equal units"),
    (lambda: {"layer": {"class_name": "GRU", "config": gru_config()},
      "backward_layer": {"class_name": "GRU", "config": {**gru_config(), "go_backwards": True, "time_major": True}}},
     ValueError, r"config\['backward_layer'\]\['time_major'\]"),
    (lambda: {"layer": {"class_name": "GRU", "config": {**gru_config(), "units": -1}}}, ValueError,
     r"config\['layer'\]: units: expected a positive integer"),
])
def test_bad_configs(config, error, message):
    config = config()
    with pytest.raises(error, match=message):
        layer_from_config(config)


@HEAVY
def test_bidirectional_of_lstm_is_named():
    config = keras.layers.Bidirectional(keras.layers.LSTM(U)).get_config()
    with pytest.raises(ValueError, match=r"config\['layer'\]: expected a GRU layer inside Bidirectional, "
                                         r"got class_name 'LSTM'"):
        layer_from_config(config)


@HEAVY
def test_bidirectional_with_a_backwards_forward_layer_is_rejected():
    # tf_keras then runs the forward layer backwards and the backward layer forwards
    config = keras.layers.Bidirectional(keras.layers.GRU(U, go_backwards=True)).get_config()
    with pytest.raises(ValueError, match=r"config\['layer'\]\['go_backwards'\]: expected False"):
        layer_from_config(config)
    explicit = keras.layers.Bidirectional(keras.layers.GRU(U, go_backwards=True),
                                          backward_layer=keras.layers.GRU(U)).get_config()
    with pytest.raises(ValueError, match=r"go_backwards"):
        layer_from_config(explicit)
