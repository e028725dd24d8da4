"""jaxgru.keras in Keras models on the JAX backend: Bidirectional, `.keras` round trips,
weights saved by keras.layers.GRU, `convert`, and Keras's distribution API on four CPU
devices. References: the same models built with keras.layers.GRU."""

import jax
import keras
import numpy as np
import pytest

from jaxgru.keras import GRU, convert

B, T, D, U = 4, 5, 3, 4
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, D)).astype(np.float32)
X[1, 3:] = 0.0  # right padding, read by the Masking layers
X[2, :2] = 0.0  # left padding


def sequential(gru=keras.layers.GRU):
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0),
                             keras.layers.Bidirectional(gru(U, return_sequences=True, reset_after=False),
                                                        merge_mode="sum"),
                             gru(U, go_backwards=True), keras.layers.Dense(2)])


def functional(gru=keras.layers.GRU):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((T, D))
    masked = keras.layers.Masking(0.0)(inputs)
    sequence, state = gru(U, return_sequences=True, return_state=True)(masked)
    inner = keras.Sequential([keras.Input((T, D)), gru(U)])  # a nested model, on the unmasked inputs
    both = keras.layers.Bidirectional(gru(U, recurrent_dropout=0.2))(sequence)
    outputs = keras.layers.Concatenate()([both, inner(inputs), state])
    return keras.Model(inputs, keras.layers.Dense(2)(outputs))


def grus(model):
    """Every GRU layer of a model, also inside Bidirectional and nested models."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += grus(layer)
        elif isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.GRU):
            found.append(layer)
    return found


@pytest.mark.parametrize("build", [sequential, functional])
def test_convert_swaps_every_gru_and_predicts_the_same(build):
    model = build()
    converted = convert(model)
    assert all(type(layer) is keras.layers.GRU for layer in grus(model))
    assert grus(converted) and all(type(layer) is GRU for layer in grus(converted))
    assert [w.shape for w in converted.weights] == [w.shape for w in model.weights]
    np.testing.assert_allclose(converted.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-5, atol=1e-5)


def test_convert_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model: expected a keras.Model"):
        convert(keras.layers.GRU(2))


def test_keras_file_round_trip_and_weights_saved_by_keras_gru(tmp_path):
    keras_model = sequential()
    jaxgru_model = sequential(GRU)
    keras_model.save(tmp_path / "keras.keras")
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    expected = keras_model.predict(X, verbose=0)
    for path in ("keras.keras", "keras.weights.h5"):  # files saved with keras.layers.GRU
        jaxgru_model.load_weights(tmp_path / path)
        np.testing.assert_allclose(jaxgru_model.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-5)
    jaxgru_model.save(tmp_path / "jaxgru.keras")
    loaded = keras.saving.load_model(tmp_path / "jaxgru.keras")
    assert [type(layer) for layer in grus(loaded)] == [GRU] * 3
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert loaded.layers[1].forward_layer.get_config() == jaxgru_model.layers[1].forward_layer.get_config()
    # a converted copy of a loaded Keras model saves and loads as jaxgru's
    converted = convert(keras.saving.load_model(tmp_path / "keras.keras"))
    converted.save(tmp_path / "converted.keras")
    again = keras.saving.load_model(tmp_path / "converted.keras")
    assert [type(layer) for layer in grus(again)] == [GRU] * 3
    np.testing.assert_allclose(again.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_data_parallel_on_four_devices_trains_as_one_device():
    """Keras's DataParallel over four CPU devices: the batch is sharded, the losses are
    those of the same model on one device."""
    devices = jax.devices("cpu")[:4]
    assert len(devices) == 4, "needs four CPU devices (conftest.py gives each test process eight)"
    x = np.concatenate([X, X[:, ::-1]])
    y = np.linspace(-1, 1, 2 * B * 2).reshape(2 * B, 2).astype(np.float32)
    losses = []
    for distribution in (None, keras.distribution.DataParallel(devices=devices)):
        keras.distribution.set_distribution(distribution)
        try:
            model = sequential(GRU)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
            losses.append(model.fit(x, y, batch_size=2 * B, epochs=3, shuffle=False, verbose=0).history["loss"])
            if distribution is not None:
                assert len(model.layers[2].cell.kernel.value.sharding.device_set) == 4  # replicated
        finally:
            keras.distribution.set_distribution(None)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
