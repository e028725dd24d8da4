"""jaxgru's initializers against tf_keras's: the same distributions on the GRU's weight shapes.

The values cannot match (jaxgru draws from a JAX key, Keras from its own seed), so each
test draws from both and compares the samples: exact for the deterministic initializers,
a two-sample Kolmogorov-Smirnov statistic plus mean, standard deviation and bounds for the
random ones. Every seed is fixed, so the tests are deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from jaxgru import initializers
from references import keras, HEAVY

D, U = 24, 32
SHAPES = {"kernel": (D, 3 * U), "recurrent_kernel": (U, 3 * U), "bias": (3 * U,), "bias_reset_after": (2, 3 * U)}

# (jaxgru identifier, tf_keras config of the same initializer)
DETERMINISTIC = [
    ("zeros", {"class_name": "Zeros", "config": {}}),
    ("ones", {"class_name": "Ones", "config": {}}),
    ({"class_name": "Constant", "config": {"value": 0.7}}, {"class_name": "Constant", "config": {"value": 0.7}}),
    ({"class_name": "Identity", "config": {"gain": 1.5}}, {"class_name": "Identity", "config": {"gain": 1.5}}),
]
RANDOM = [
    (name, {"class_name": name, "config": {}})
    for name in ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                 "random_normal", "random_uniform", "truncated_normal", "variance_scaling", "orthogonal")
] + [
    (cfg, cfg) for cfg in [
        {"class_name": "RandomNormal", "config": {"mean": 0.3, "stddev": 0.2}},
        {"class_name": "RandomUniform", "config": {"minval": -0.3, "maxval": 0.1}},
        {"class_name": "TruncatedNormal", "config": {"mean": 0.1, "stddev": 0.5}},
        {"class_name": "Orthogonal", "config": {"gain": 2.5}},
    ] + [
        {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": mode, "distribution": dist}}
        for mode in ("fan_in", "fan_out", "fan_avg")
        for dist in ("truncated_normal", "untruncated_normal", "uniform")
    ]
]


def draw_both(identifier, keras_config, shape, samples=1):
    """``samples`` draws of ``shape`` from jaxgru and from tf_keras (a seed each), flattened."""
    ours, theirs = [], []
    for i in range(samples):
        ours.append(np.asarray(initializers.get(identifier)(jax.random.key(i), shape, jnp.float32)))
        seeded = keras_config["class_name"] not in ("Zeros", "Ones", "Constant", "Identity")
        config = {**keras_config, "config": {**keras_config["config"], **({"seed": 11 + i} if seeded else {})}}
        theirs.append(keras.initializers.get(config)(shape, dtype="float32").numpy())
        assert ours[-1].shape == theirs[-1].shape == shape and ours[-1].dtype == np.float32
    return np.ravel(ours), np.ravel(theirs)


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    grid = np.concatenate([a, b])
    cdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / s.size  # noqa: E731
    return np.max(np.abs(cdf(a) - cdf(b)))


@HEAVY
@pytest.mark.parametrize("identifier,keras_config", DETERMINISTIC)
@pytest.mark.parametrize("weight", ["kernel", "recurrent_kernel"])
def test_deterministic_initializers_equal_keras(identifier, keras_config, weight):
    ours, theirs = draw_both(identifier, keras_config, SHAPES[weight])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=0)


@HEAVY
@pytest.mark.parametrize("identifier,keras_config", RANDOM, ids=lambda v: str(v)[:60])
def test_random_initializers_match_keras_statistics(identifier, keras_config):
    for weight in ("kernel", "recurrent_kernel", "bias", "bias_reset_after"):
        shape = SHAPES[weight]
        if "rthogonal" in str(identifier) and len(shape) < 2:
            continue  # Keras (and jaxgru) reject a 1-D orthogonal weight
        ours, theirs = draw_both(identifier, keras_config, shape, samples=-(-3000 // np.prod(shape)))
        n = ours.size
        # Fixed seeds: these are far looser than the sampling noise at these sizes.
        assert ks_statistic(ours, theirs) < 2.2 * np.sqrt(2 / n), weight
        scale = theirs.std()
        assert abs(ours.mean() - theirs.mean()) < 6 * scale * np.sqrt(2 / n), weight
        np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.08, err_msg=weight)
        span = theirs.max() - theirs.min()
        if "niform" in str(identifier) or "uniform" in str(keras_config):  # bounded: same bounds
            np.testing.assert_allclose([ours.min(), ours.max()], [theirs.min(), theirs.max()], atol=0.02 * span)


@HEAVY
def test_glorot_uniform_limit_is_over_the_whole_kernel():
    kernel = jaxgru.GRUCell(U).init(jax.random.key(1), D)["kernel"]
    limit = np.sqrt(6 / (D + 3 * U))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.98 * limit  # per-gate fans (D + U) would give a larger limit
    keras_kernel = keras.initializers.GlorotUniform(seed=1)((D, 3 * U)).numpy()
    assert np.abs(keras_kernel).max() <= limit


@HEAVY
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_recurrent_kernel_has_orthonormal_rows_over_all_gates(gain):
    cell = jaxgru.GRUCell(U, recurrent_initializer={"class_name": "Orthogonal", "config": {"gain": gain}})
    ours = np.asarray(cell.init(jax.random.key(2), D)["recurrent_kernel"], np.float64)
    theirs = keras.initializers.Orthogonal(gain=gain, seed=2)((U, 3 * U)).numpy().astype(np.float64)
    for w in (ours, theirs):
        np.testing.assert_allclose(w @ w.T, gain**2 * np.eye(U), atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_init_returns_the_requested_dtype(dtype):
    params = jaxgru.GRUCell(4).init(jax.random.key(0), 3, dtype=dtype)
    assert {w.dtype for w in params.values()} == {jnp.dtype(dtype)}
    q = np.asarray(params["recurrent_kernel"], np.float32)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=0.05)


@HEAVY
@pytest.mark.parametrize("reset_after,bias_shape", [(True, (2, 3 * U)), (False, (3 * U,))])
def test_default_init_shapes_and_zero_bias_like_keras(reset_after, bias_shape):
    params = jaxgru.GRUCell(U, reset_after=reset_after).init(jax.random.key(0), D)
    layer = keras.layers.GRUCell(U, reset_after=reset_after)
    layer.build((None, D))
    assert {k: v.shape for k, v in params.items()} == {
        "kernel": (D, 3 * U), "recurrent_kernel": (U, 3 * U), "bias": bias_shape}
    assert [tuple(w.shape) for w in layer.get_weights()] == [(D, 3 * U), (U, 3 * U), bias_shape]
    np.testing.assert_array_equal(params["bias"], np.zeros(bias_shape))


def test_each_weight_uses_its_own_initializer():
    cell = jaxgru.GRUCell(3, kernel_initializer="ones", recurrent_initializer="zeros",
                          bias_initializer={"class_name": "Constant", "config": {"value": 2.0}})
    params = cell.init(jax.random.key(0), 2)
    assert np.all(params["kernel"] == 1) and np.all(params["recurrent_kernel"] == 0)
    assert np.all(params["bias"] == 2)


def test_same_key_same_params_different_key_different_params():
    cell = jaxgru.GRUCell(5)
    a, b, c = (cell.init(jax.random.key(k), 4) for k in (0, 0, 1))
    for name in ("kernel", "recurrent_kernel"):
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.allclose(a[name], c[name])


def test_keras_seed_is_ignored():
    seeded = {"class_name": "GlorotUniform", "config": {"seed": 3}}
    cell = jaxgru.GRUCell(4, kernel_initializer=seeded)
    assert cell == jaxgru.GRUCell(4)  # the seed is dropped: the randomness comes from the key
    assert cell.get_config()["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {}}


@HEAVY
@pytest.mark.parametrize("alias,canonical", [("normal", "random_normal"), ("uniform", "random_uniform"),
                                             ("one", "ones"), ("zero", "zeros"),
                                             ("GlorotUniformV2", "glorot_uniform"),
                                             ("he_normalV2", "he_normal")])
def test_keras_aliases(alias, canonical):
    assert initializers.get(alias) == initializers.get(canonical)
    keras.initializers.get(alias)  # the alias is one tf_keras reads


def test_plain_jax_initializer_callable():
    cell = jaxgru.GRUCell(3, kernel_initializer=jax.nn.initializers.ones)
    np.testing.assert_array_equal(cell.init(jax.random.key(0), 2)["kernel"], np.ones((2, 9)))
