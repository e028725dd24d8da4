"""jaxgru.keras.GRU against keras.layers.GRU on the JAX backend, given the same weights.

Random configurations (both conventions, both implementations, go_backwards, the return
options, left/right/mixed masks from a non-zero initial state, no bias, tanh/relu/
hard_sigmoid, unroll): outputs, states and the gradients w.r.t. the weights and the
initial state (a stateless call under `jax.grad`). Stateful calls, dropout (Keras's own
masks from the seed generator), `model.fit` losses with jit_compile, mixed_bfloat16,
and Keras's own errors.
"""

import functools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from jaxgru.keras import GRU

B, T, D, U = 3, 6, 4, 5
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, D)).astype(np.float32)
H0 = RNG.normal(size=(B, U)).astype(np.float32)
MASKS = {
    "none": None,
    "right": np.arange(T)[None, :] < np.array([[6], [3], [1]]),
    "left": np.arange(T)[None, :] >= np.array([[0], [2], [5]]),
    "mixed": np.array([[0, 1, 1, 0, 1, 0], [1, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool),  # a fully masked row
}
ACTIVATIONS = ("tanh", "relu", "hard_sigmoid")


def random_configs(count, seed=1):
    rng = np.random.default_rng(seed)
    pick = lambda values: values[rng.integers(len(values))]  # noqa: E731
    configs = []
    for i in range(count):
        mask = list(MASKS)[i % len(MASKS)]  # every mask kind, the rest at random
        configs.append(dict(
            mask=mask, initial_state=bool(rng.integers(2)) or mask in ("left", "mixed"),
            layer=dict(reset_after=bool(rng.integers(2)), implementation=int(pick((1, 2))),
                       go_backwards=bool(rng.integers(2)), return_sequences=bool(rng.integers(2)),
                       return_state=bool(rng.integers(2)), use_bias=bool(rng.integers(4)),
                       activation=pick(ACTIVATIONS), recurrent_activation=pick(("sigmoid", "hard_sigmoid")),
                       unroll=bool(rng.integers(5) == 0))))
    return configs


def pair(weight_seed=0, batch_shape=(None, T, D), **kwargs):
    """``keras.layers.GRU`` and `GRU` with the same config and weights (bias randomised)."""
    reference, ours = keras.layers.GRU(U, **kwargs), GRU(U, **kwargs)
    reference.build(batch_shape)
    ours.build(batch_shape)
    rng = np.random.default_rng(weight_seed)
    ours.set_weights([w + 0.3 * rng.normal(size=w.shape).astype(w.dtype) if i == 2 else w
                      for i, w in enumerate(reference.get_weights())])
    reference.set_weights(ours.get_weights())
    return reference, ours


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def outputs_and_grads(layer, mask, h0):
    """The layer's outputs from ``h0``, and the gradients of a weighted sum of them w.r.t.
    the weights and ``h0`` (one jitted stateless call)."""
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(weights, state):
        outputs, _ = layer.stateless_call(weights, non_trainable, X, initial_state=state, mask=mask)
        outputs = as_list(outputs)
        total = sum(jnp.sum(o * jnp.cos(jnp.arange(o.size, dtype=o.dtype).reshape(o.shape))) for o in outputs)
        return total, outputs

    (_, outputs), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
        [v.value for v in layer.trainable_variables], h0)
    return outputs, grads


@pytest.mark.parametrize("config", random_configs(8), ids=lambda c: f"{c['mask']}-" + "-".join(
    f"{k}={v}" for k, v in c["layer"].items()))
def test_outputs_states_and_gradients_match_keras(config):
    reference, ours = pair(**config["layer"])
    mask = MASKS[config["mask"]]
    h0 = jnp.asarray(H0) if config["initial_state"] else jnp.zeros((B, U))
    (expected, grads_e), (got, grads_g) = outputs_and_grads(reference, mask, h0), outputs_and_grads(ours, mask, h0)
    assert len(got) == len(expected) == 1 + config["layer"]["return_state"]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    for g, e in zip(jax.tree.leaves(grads_g), jax.tree.leaves(grads_e), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_the_loop_is_jaxgrus():
    """The traced call holds jaxgru's fused backward (a custom_vjp), which Keras's own
    loop has not."""
    reference, ours = pair()
    programs = [str(jax.make_jaxpr(lambda x, layer=layer: layer(x, mask=MASKS["right"]))(X))
                for layer in (reference, ours)]
    assert "custom_vjp_call" not in programs[0]
    assert "custom_vjp_call" in programs[1]


@pytest.mark.parametrize("mask", ["none", "mixed"])
def test_stateful_calls_match_keras(mask):
    reference, ours = pair(batch_shape=(B, T, D), stateful=True, return_sequences=True)
    for _ in range(2):  # the second call starts from the first call's final state
        np.testing.assert_allclose(ours(X, mask=MASKS[mask]), reference(X, mask=MASKS[mask]), rtol=1e-5, atol=1e-5)
    ours.reset_state()
    reference.reset_state()
    np.testing.assert_allclose(ours(X), reference(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rates", [dict(dropout=0.4), dict(dropout=0.4, implementation=1),
                                   dict(dropout=0.3, recurrent_dropout=0.5), dict(recurrent_dropout=0.5)],
                         ids=["dropout", "dropout-impl1", "both", "recurrent"])
def test_dropout_uses_the_seed_generators_masks(rates):
    """With the same seed both layers draw the same masks from their seed generators, call
    after call; training draws new masks per call; inference uses none. (use_cudnn=False:
    keras.layers.GRU's fused path fails in training with implementation=1 and dropout on
    Keras 3.15.1 (its three input masks do not broadcast); its generic loop draws the same
    masks as the fused path.)"""
    reference, ours = pair(weight_seed=2, return_sequences=True, seed=7, use_cudnn=False, **rates)
    first = ours(X, mask=MASKS["right"], training=True)
    assert first.shape == (B, T, U)
    np.testing.assert_allclose(first, reference(X, mask=MASKS["right"], training=True), rtol=1e-5, atol=1e-5)
    second = ours(X, mask=MASKS["right"], training=True)
    np.testing.assert_allclose(second, reference(X, mask=MASKS["right"], training=True), rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(first) - np.asarray(second)).max() > 1e-3  # new masks per call
    again = GRU(U, return_sequences=True, seed=7, **rates)
    again.build((None, T, D))
    again.set_weights(ours.get_weights())
    np.testing.assert_array_equal(again(X, mask=MASKS["right"], training=True), first)  # seed= repeats runs
    plain = GRU(U, return_sequences=True)
    plain.build((None, T, D))
    plain.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(X, training=False), plain(X), rtol=1e-6, atol=1e-6)


def small_model(layer_class, dtype=None, **kwargs):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0),
                              layer_class(U, dtype=dtype, **kwargs), keras.layers.Dense(1, dtype=dtype)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    return model


def padded_data():
    """Six sequences, right and left padded with zeros (read by the Masking layer)."""
    x = np.concatenate([X, X[:, ::-1]])
    x[np.concatenate([~MASKS["right"], ~MASKS["left"]])] = 0.0
    return x, np.linspace(-1, 1, len(x)).astype(np.float32)[:, None]


@pytest.mark.parametrize("kwargs", [dict(), dict(reset_after=False, go_backwards=True)], ids=["after", "before"])
def test_fit_with_jit_compile_gives_keras_losses(kwargs):
    x, y = padded_data()
    losses = []
    for layer_class in (keras.layers.GRU, GRU):
        model = small_model(layer_class, **kwargs)
        losses.append(model.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert losses[1][-1] < losses[1][0]


def test_mixed_bfloat16():
    x, y = padded_data()
    predictions = []
    for layer_class in (keras.layers.GRU, GRU):
        model = small_model(layer_class, dtype="mixed_bfloat16")
        gru = model.layers[1]
        assert gru.compute_dtype == "bfloat16" and gru.variable_dtype == "float32"
        assert model(x).dtype == "bfloat16"
        predictions.append(np.asarray(model.predict(x, verbose=0), np.float32))
        model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    np.testing.assert_allclose(predictions[1], predictions[0], rtol=0.05, atol=0.05)


@pytest.mark.parametrize("case", ["units", "use_cudnn", "ndim", "stateful-batch", "cudnn-with-mask"])
def test_refuses_what_keras_refuses_with_keras_errors(case):
    def attempt(layer_class):
        if case == "units":
            layer_class(0)
        elif case == "use_cudnn":
            layer_class(2, use_cudnn="yes")
        elif case == "ndim":
            layer_class(2)(X[0])
        elif case == "stateful-batch":
            layer = layer_class(2, stateful=True)
            layer(X)
            layer(X[:2])
        else:
            layer_class(2, use_cudnn=True)(X, mask=MASKS["right"])

    errors = []
    for layer_class in (keras.layers.GRU, GRU):
        with pytest.raises(ValueError) as error:
            attempt(functools.partial(layer_class, name="g"))
        errors.append(str(error.value))
    assert errors[1] == errors[0]
