"""from_keras / to_keras against tf_keras layers, and Keras -> jaxgru -> torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from keras_reference import randomize
from references import HEAVY, keras, torch

import jaxgru

INPUT, UNITS, BATCH, STEPS = 3, 4, 2, 5
X = np.random.default_rng(0).normal(size=(BATCH, STEPS, INPUT)).astype(np.float32)


def keras_gru(seed=0, **options):
    layer = keras.layers.GRU(UNITS, return_sequences=True, return_state=True, **options)
    layer.build((None, STEPS, INPUT))
    randomize(layer, seed)
    return layer


@HEAVY
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_round_trip_is_exact_and_matches_keras(reset_after, use_bias):
    layer = keras_gru(reset_after=reset_after, use_bias=use_bias)
    weights = layer.get_weights()
    cell = jaxgru.GRUCell(UNITS, reset_after=reset_after, use_bias=use_bias)
    params = jaxgru.from_keras(weights, cell=cell)
    back = jaxgru.to_keras(params)
    assert len(back) == len(weights)
    for a, b in zip(back, weights):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    layer.set_weights(back)
    k_out, k_state = layer(X)
    outputs, final = jaxgru.rnn(cell, params, jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(outputs), k_out.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(final), k_state.numpy(), atol=1e-5)


@HEAVY
def test_keras_weights_load_into_torch_and_give_keras_outputs():
    layer = keras_gru(seed=3)
    k_out, k_state = layer(X)
    params = jaxgru.from_keras(layer.get_weights(), cell=jaxgru.GRUCell(UNITS))
    module = torch.nn.GRU(INPUT, UNITS, batch_first=True)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in jaxgru.to_torch(params).items()})
    with torch.no_grad():
        t_out, h_n = module(torch.from_numpy(X))
    np.testing.assert_allclose(t_out.numpy(), k_out.numpy(), atol=1e-5)
    np.testing.assert_allclose(h_n[0].numpy(), k_state.numpy(), atol=1e-5)
    # and back: torch -> jaxgru -> Keras is the identity on the weights
    for a, b in zip(jaxgru.to_keras(jaxgru.from_torch(module.state_dict())), layer.get_weights()):
        np.testing.assert_array_equal(a, b)


@HEAVY
def test_params_are_copies():
    weights = keras_gru().get_weights()
    params = jaxgru.from_keras(weights)
    weights[0] += 1.0
    assert not np.array_equal(params["kernel"], weights[0])


@HEAVY
def test_jax_params_are_accepted():
    params = jaxgru.GRUCell(UNITS).init(jax.random.key(0), INPUT)
    layer = keras_gru()
    layer.set_weights(jaxgru.to_keras(params))
    for a, b in zip(layer.get_weights(), params.values()):
        np.testing.assert_array_equal(a, np.asarray(b))


# ------------------------------------------------------------------ malformed inputs
@HEAVY
@pytest.mark.parametrize("cell,message", [
    (jaxgru.GRUCell(5), "units=4, cell.units=5"),
    (jaxgru.GRUCell(UNITS, use_bias=False), "have bias, cell.use_bias=False"),
    (jaxgru.GRUCell(UNITS, reset_after=False), r"reset_after=True layout \(\(2, 3U\)\), cell.reset_after=False"),
])
def test_weights_must_fit_the_cell(cell, message):
    with pytest.raises(ValueError, match=message):
        jaxgru.from_keras(keras_gru().get_weights(), cell=cell)


@HEAVY
def test_bias_free_weights_must_fit_the_cell():
    weights = keras_gru(use_bias=False).get_weights()
    with pytest.raises(ValueError, match="have no bias, cell.use_bias=True"):
        jaxgru.from_keras(weights, cell=jaxgru.GRUCell(UNITS))
    with pytest.raises(TypeError, match="cell: expected a jaxgru.GRUCell"):
        jaxgru.from_keras(weights, cell=keras.layers.GRUCell(UNITS))


@HEAVY
@pytest.mark.parametrize("index,shape,message", [
    (0, (3, 9), r"weights\[0\] \(kernel\): expected shape \(input_dim, 12\) for units=4"),
    (0, (3, 12, 1), r"weights\[0\] \(kernel\): expected shape"),
    (1, (4, 9), r"weights\[1\] \(recurrent_kernel\): expected shape \(units, 3\*units\)"),
    (1, (0, 0), r"units > 0"),
    (2, (12, 2), r"weights\[2\] \(bias\): expected shape \(12,\) \(reset_after=False\) or \(2, 12\)"),
    (2, (6,), r"weights\[2\] \(bias\)"),
])
def test_bad_shapes(index, shape, message):
    weights = keras_gru().get_weights()
    weights[index] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=message):
        jaxgru.from_keras(weights)


@pytest.mark.parametrize("weights,message", [
    ({"kernel": 0}, "expected a list"),
    ([np.zeros((3, 12))], "of length 1"),
    ([np.zeros((3, 12)), np.zeros((4, 12)), np.zeros(12), np.zeros(12)], "of length 4"),
])
def test_bad_lists(weights, message):
    with pytest.raises(ValueError, match=message):
        jaxgru.from_keras(weights)


@HEAVY
def test_non_float_and_non_array_weights():
    weights = keras_gru().get_weights()
    with pytest.raises(TypeError, match=r"weights\[1\] \(recurrent_kernel\): expected floating-point"):
        jaxgru.from_keras([weights[0], weights[1].astype(np.int64), weights[2]])
    with pytest.raises(TypeError, match=r"weights\[0\] \(kernel\): expected floating-point"):
        jaxgru.from_keras(["kernel", weights[1], weights[2]])


@HEAVY
@pytest.mark.parametrize("change,error,message", [
    (lambda p: p.pop("recurrent_kernel"), ValueError, r"params\['recurrent_kernel'\]: missing; expected shape"),
    (lambda p: p.update(bias=np.zeros(3)), ValueError, r"params\['bias'\]: expected shape \(12,\)"),
    (lambda p: p.update(kernels=p["kernel"]), ValueError, r"unexpected keys \['kernels'\]"),
])
def test_to_keras_rejects_malformed_params(change, error, message):
    params = jaxgru.from_keras(keras_gru().get_weights())
    change(params)
    with pytest.raises(error, match=message):
        jaxgru.to_keras(params)


def test_to_keras_takes_a_dict():
    with pytest.raises(TypeError, match="params: expected a dict of arrays"):
        jaxgru.to_keras(jaxgru.to_keras(jaxgru.GRUCell(UNITS).init(jax.random.key(0), INPUT)))
