"""load_keras_weights on files saved by tf_keras and Keras 3, checked against the models' outputs."""

import sys
import zipfile

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from keras_reference import randomize
from references import HEAVY, keras3
from references import keras as tf_keras

import jaxgru

STEPS, INPUT = 5, 3
X = np.random.default_rng(0).normal(size=(2, STEPS, INPUT)).astype(np.float32)
LIBRARIES = {"tf_keras": tf_keras, "keras3": keras3}
# file suffix -> how it is written; Keras 3 writes legacy HDF5 only as a full model
FORMATS = {
    "model.h5": lambda model, path: model.save(path),
    "weights.h5": lambda model, path: model.save_weights(path),
    "model.weights.h5": lambda model, path: model.save_weights(path),
    "model.keras": lambda model, path: model.save(path),
}
CASES = [(lib, fmt) for lib in LIBRARIES for fmt in FORMATS if not (lib == "keras3" and fmt == "weights.h5")]


def build_models(keras):
    """A Bidirectional GRU model and a Sequential with two GRU layers (both bias conventions)."""
    inputs = keras.Input((STEPS, INPUT))
    bidirectional = keras.Model(inputs, keras.layers.Bidirectional(
        keras.layers.GRU(4, return_sequences=True, name="enc"), name="bi")(inputs))
    stacked = keras.Sequential([keras.Input((STEPS, INPUT)),
                                keras.layers.GRU(4, return_sequences=True, reset_after=False, name="first"),
                                keras.layers.GRU(3, return_sequences=True, use_bias=False, name="second")])
    randomize(bidirectional, 1)
    randomize(stacked, 2)
    return {"bidirectional": bidirectional, "stacked": stacked}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{(library, format, model): (path, Keras outputs on X)} for every file written."""
    files = {}
    for lib_name, keras in LIBRARIES.items():
        for model_name, model in build_models(keras).items():
            expected = np.asarray(model(X))
            for fmt, save in FORMATS.items():
                if (lib_name, fmt) in CASES:
                    # "x-weights.h5" is a legacy file, "x-model.weights.h5" a saving-library one
                    path = tmp_path_factory.mktemp(lib_name) / f"{model_name}-{fmt}"
                    save(model, str(path))
                    files[lib_name, fmt, model_name] = (path, expected)
    return files


def expected_names(lib, fmt):
    if lib == "tf_keras" and fmt in ("model.weights.h5", "model.keras"):  # no names recorded: object paths
        return ("bidirectional/forward_layer", "bidirectional/backward_layer"), ("gru", "gru_1")
    return ("bi/forward_enc", "bi/backward_enc"), ("first", "second")


@HEAVY
@pytest.mark.parametrize("lib,fmt", CASES)
def test_loaded_weights_reproduce_keras(saved, lib, fmt):
    (forward, backward), (first, second) = expected_names(lib, fmt)

    path, expected = saved[lib, fmt, "bidirectional"]
    layers = jaxgru.load_keras_weights(path)
    assert sorted(layers) == sorted([forward, backward])
    outputs, _ = jaxgru.bidirectional(jaxgru.GRUCell(4), {"forward": layers[forward], "backward": layers[backward]},
                                      jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(outputs), expected, atol=1e-5)

    path, expected = saved[lib, fmt, "stacked"]
    layers = jaxgru.load_keras_weights(str(path))
    assert sorted(layers) == sorted([first, second])
    assert layers[first]["bias"].shape == (12,) and "bias" not in layers[second]
    hidden, _ = jaxgru.rnn(jaxgru.GRUCell(4, reset_after=False), layers[first], jnp.asarray(X))
    outputs, _ = jaxgru.rnn(jaxgru.GRUCell(3, use_bias=False), layers[second], hidden)
    np.testing.assert_allclose(np.asarray(outputs), expected, atol=1e-5)


@HEAVY
def test_nested_model_names(tmp_path):
    inner = tf_keras.Sequential([tf_keras.Input((STEPS, INPUT)), tf_keras.layers.GRU(2, name="g")], name="encoder")
    inputs = tf_keras.Input((STEPS, INPUT))
    model = tf_keras.Model(inputs, inner(inputs))
    model.save_weights(str(tmp_path / "nested.h5"))
    layers = jaxgru.load_keras_weights(tmp_path / "nested.h5")
    assert list(layers) == ["encoder/g"]
    for a, b in zip(jaxgru.to_keras(layers["encoder/g"]), inner.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ malformed inputs
@HEAVY
def test_missing_h5py_names_the_extra(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install jaxgru\[h5\]"):
        jaxgru.load_keras_weights(saved["tf_keras", "model.h5", "stacked"][0])


def test_not_a_keras_file(tmp_path):
    (tmp_path / "notes.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a Keras .h5, .weights.h5 or .keras file"):
        jaxgru.load_keras_weights(tmp_path / "notes.h5")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="without 'model.weights.h5'"):
        jaxgru.load_keras_weights(tmp_path / "other.keras")


@HEAVY
@pytest.mark.parametrize("suffix", ["h5", "weights.h5"])
def test_a_file_without_gru(tmp_path, suffix):
    model = tf_keras.Sequential([tf_keras.Input((STEPS, INPUT)), tf_keras.layers.LSTM(3), tf_keras.layers.Dense(2)])
    path = str(tmp_path / f"lstm.{suffix}")
    model.save_weights(path)
    with pytest.raises(ValueError, match="no GRU weights found"):
        jaxgru.load_keras_weights(path)


@HEAVY
@pytest.mark.parametrize("lib,fmt,dataset", [
    ("tf_keras", "model.h5", "model_weights/first/first/gru_cell/bias:0"),
    ("keras3", "model.weights.h5", "layers/gru/cell/vars/2"),
])
def test_malformed_gru_weights(saved, tmp_path, lib, fmt, dataset):
    path = tmp_path / f"broken.{fmt}"
    path.write_bytes(saved[lib, fmt, "stacked"][0].read_bytes())
    with h5py.File(path, "r+") as file:
        del file[dataset]
        file[dataset] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"malformed.*bias\): expected shape \(12,\) \(reset_after=False\)"):
        jaxgru.load_keras_weights(path)
