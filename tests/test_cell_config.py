"""Regularizers, constraints and configs against tf_keras.layers.GRUCell.

`penalty` is compared with the sum of Keras's ``layer.losses``, `constrain` with Keras's
constraint objects applied to the same weights, and configs are exchanged both ways with
real tf_keras (and Keras 3) ``get_config()`` dicts.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from keras_reference import keras_cell, params_of, randomize
from references import keras, keras3, tf, HEAVY

UNITS, INPUT_DIM = 4, 3


def keras_serialized(obj):
    """What tf_keras's GRUCell.get_config() emits for ``obj`` (with "module"/"registered_name")."""
    return keras.utils.serialize_keras_object(obj)


@dataclasses.dataclass
class KerasObject:
    """``keras.<kind>.<class_name>(*args, **kwargs)`` of tf_keras, or with ``serialized`` what
    tf_keras serializes it to: built when a test runs, not when pytest collects this file."""

    kind: str
    class_name: str
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    serialized: bool = False

    def build(self):
        obj = getattr(getattr(keras, self.kind), self.class_name)(*self.args, **self.kwargs)
        return keras_serialized(obj) if self.serialized else obj


def built(options):
    """``options`` with every `KerasObject` built."""
    return {key: value.build() if isinstance(value, KerasObject) else value for key, value in options.items()}


def serialized(class_name, *args, **kwargs):
    return KerasObject("regularizers", class_name, args, kwargs, serialized=True)


REGULARIZERS = [
    dict(kernel_regularizer="l1"),
    dict(recurrent_regularizer="l2"),
    dict(bias_regularizer="l1_l2"),
    dict(kernel_regularizer={"class_name": "L1L2", "config": {"l1": 0.003, "l2": 0.02}}),
    dict(kernel_regularizer={"class_name": "L1L2", "config": {}}),  # the class defaults to 0, 0
    dict(recurrent_regularizer=serialized("L2", 0.05)),
    dict(kernel_regularizer=serialized("OrthogonalRegularizer", 0.2, mode="columns"),
         recurrent_regularizer="orthogonal_regularizer"),
    dict(kernel_regularizer="l2", recurrent_regularizer=serialized("L1", 0.1),
         bias_regularizer={"class_name": "L2", "config": {"l2": 0.3}}),
    dict(bias_regularizer=serialized("OrthogonalRegularizer", 0.5)),  # (2, 3U) bias
    dict(),
]


@HEAVY
@pytest.mark.parametrize(
    "options,reset_after",
    # Keras's OrthogonalRegularizer needs a 2-D weight: not on the (3U,) bias of reset_after=False
    [(o, r) for o in REGULARIZERS for r in (True, False) if r or "Orthogonal" not in str(o.get("bias_regularizer"))],
    ids=lambda o: json.dumps(o, default=repr)[:80])
def test_penalty_equals_keras_losses(options, reset_after):
    options = built(options)
    kcell = keras_cell(UNITS, INPUT_DIM, seed=3, reset_after=reset_after, **options)
    cell = jaxgru.GRUCell(UNITS, reset_after=reset_after, **options)
    params = params_of(kcell.get_weights())
    expected = float(tf.add_n(kcell.losses)) if kcell.losses else 0.0
    penalty = cell.penalty(params)
    assert penalty.shape == () and penalty.dtype == jnp.float32
    np.testing.assert_allclose(float(penalty), expected, rtol=1e-5, atol=1e-7)
    if not options:
        assert float(penalty) == 0.0


def test_penalty_is_differentiable_and_jittable():
    cell = jaxgru.GRUCell(UNITS, kernel_regularizer={"class_name": "L2", "config": {"l2": 0.5}})
    params = cell.init(jax.random.key(0), INPUT_DIM)
    grads = jax.jit(jax.grad(cell.penalty))(params)
    np.testing.assert_allclose(grads["kernel"], 2 * 0.5 * params["kernel"], rtol=1e-6)
    np.testing.assert_array_equal(grads["recurrent_kernel"], 0)


def test_penalty_with_plain_callable():
    cell = jaxgru.GRUCell(UNITS, recurrent_regularizer=lambda w: jnp.sum(w))
    params = cell.init(jax.random.key(0), INPUT_DIM)
    np.testing.assert_allclose(cell.penalty(params), np.sum(params["recurrent_kernel"]), rtol=1e-6)


CONSTRAINTS = [
    {"class_name": "MaxNorm", "config": {"max_value": 0.5, "axis": 0}},
    {"class_name": "MaxNorm", "config": {"max_value": 1.0, "axis": -1}},
    {"class_name": "MaxNorm", "config": {"max_value": 0.7, "axis": [0, 1]}},
    "max_norm",
    "non_neg",
    "unit_norm",
    {"class_name": "UnitNorm", "config": {"axis": -1}},
    "min_max_norm",
    {"class_name": "MinMaxNorm", "config": {"min_value": 0.5, "max_value": 0.8, "rate": 0.7, "axis": -1}},
    # min_value == max_value: every norm set to it (min_value > max_value is rejected, see
    # test_keras_objects_hostile.py: Keras's backends disagree on it)
    {"class_name": "MinMaxNorm", "config": {"min_value": 1.2, "max_value": 1.2, "rate": 1.0, "axis": 0}},
]


@HEAVY
@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=lambda c: json.dumps(c)[:80])
@pytest.mark.parametrize("reset_after", [True, False])
def test_constrain_equals_keras_constraints(constraint, reset_after):
    axis = constraint["config"].get("axis") if isinstance(constraint, dict) else 0
    # a (3U,) bias has no axis 1
    bias_constraint = None if not reset_after and axis == [0, 1] else constraint
    kcell = keras_cell(UNITS, INPUT_DIM, seed=5, scale=1.5, reset_after=reset_after, kernel_constraint=constraint,
                       recurrent_constraint=constraint, bias_constraint=bias_constraint)
    cell = jaxgru.GRUCell(UNITS, reset_after=reset_after, kernel_constraint=constraint,
                          recurrent_constraint=constraint, bias_constraint=bias_constraint)
    params = params_of(kcell.get_weights())
    constrained = cell.constrain(params)
    assert set(constrained) == set(params)
    for name, variable in zip(("kernel", "recurrent_kernel", "bias"), kcell.weights):
        expected = variable.constraint(tf.constant(params[name])).numpy() if variable.constraint else params[name]
        np.testing.assert_allclose(constrained[name], expected, rtol=1e-6, atol=1e-7, err_msg=name)
    assert not np.allclose(constrained["kernel"], params["kernel"])  # the test exercises a projection


def test_constrain_without_constraints_is_identity_and_keeps_missing_bias():
    cell = jaxgru.GRUCell(UNITS, use_bias=False, kernel_constraint="non_neg")
    params = cell.init(jax.random.key(0), INPUT_DIM)
    out = cell.constrain(params)
    assert set(out) == {"kernel", "recurrent_kernel"}
    np.testing.assert_array_equal(out["recurrent_kernel"], params["recurrent_kernel"])
    np.testing.assert_array_equal(out["kernel"], np.maximum(params["kernel"], 0))


# ---------------------------------------------------------------- configs
KERAS_CELLS = [
    dict(),
    dict(reset_after=False, implementation=1, use_bias=False),
    dict(activation="relu", recurrent_activation="hard_sigmoid", implementation=0),
    dict(activation=None, recurrent_activation="softsign", implementation=0, dropout=0.3),
    dict(kernel_initializer=KerasObject("initializers", "VarianceScaling", (2.0, "fan_out", "uniform"), {"seed": 1}),
         recurrent_initializer=KerasObject("initializers", "Orthogonal", kwargs={"gain": 1.7, "seed": 3}),
         bias_initializer=KerasObject("initializers", "Constant", (0.25,))),
    dict(kernel_regularizer=KerasObject("regularizers", "L1L2", (0.01, 0.2)), recurrent_regularizer="l2",
         bias_regularizer=KerasObject("regularizers", "L1", (0.05,)), reset_after=False),
    dict(kernel_constraint=KerasObject("constraints", "MaxNorm", (0.4,), {"axis": [0, 1]}),
         recurrent_constraint="unit_norm",
         bias_constraint=KerasObject("constraints", "MinMaxNorm", (0.1, 0.5), {"rate": 0.5, "axis": -1})),
    dict(dropout=0.2, recurrent_dropout=0.4, implementation=2),
    dict(activation="gelu", recurrent_activation="swish", kernel_initializer="he_normal",
         recurrent_initializer="lecun_uniform", bias_initializer="random_normal"),
]


def keras_and_jaxgru(options, seed=0):
    kcell = keras_cell(UNITS, INPUT_DIM, seed=seed, scale=0.4, **built(options))
    cell = jaxgru.GRUCell.from_config(kcell.get_config())
    return kcell, cell


def assert_same_outputs(kcell, cell, seed=0):
    """One step of both cells with Keras's dropout masks (when it drops) and the same weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, INPUT_DIM)).astype(np.float32)
    h = rng.normal(size=(3, UNITS)).astype(np.float32)
    training = cell.dropout > 0 or cell.recurrent_dropout > 0
    masks = None
    if training:
        kcell.reset_dropout_mask()
        kcell.reset_recurrent_dropout_mask()
        dp = kcell.get_dropout_mask_for_cell(tf.constant(x), training=True, count=3)
        rdp = kcell.get_recurrent_dropout_mask_for_cell(tf.constant(h), training=True, count=3)
        masks = jaxgru.DropoutMasks(None if dp is None else jnp.stack([np.asarray(m) for m in dp]),
                                    None if rdp is None else jnp.stack([np.asarray(m) for m in rdp]))
    expected, _ = kcell(tf.constant(x), tf.constant(h), training=training)
    out, _ = cell.step(params_of(kcell.get_weights()), jnp.asarray(h), jnp.asarray(x), training=training,
                       dropout_masks=masks)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5, rtol=1e-6)


@HEAVY
@pytest.mark.parametrize("options", KERAS_CELLS, ids=lambda o: ",".join(o) or "defaults")
def test_from_keras_config_matches_keras(options):
    kcell, cell = keras_and_jaxgru(options)
    assert cell.implementation == kcell.implementation
    assert_same_outputs(kcell, cell)
    params = params_of(kcell.get_weights())
    np.testing.assert_allclose(cell.penalty(params), float(tf.add_n(kcell.losses)) if kcell.losses else 0.0,
                               rtol=1e-5)
    for name, variable in zip(("kernel", "recurrent_kernel", "bias"), kcell.weights):
        if variable.constraint is not None:
            np.testing.assert_allclose(cell.constrain(params)[name],
                                       variable.constraint(variable).numpy(), rtol=1e-6, atol=1e-7)


@HEAVY
@pytest.mark.parametrize("options", KERAS_CELLS, ids=lambda o: ",".join(o) or "defaults")
def test_jaxgru_config_is_read_by_keras(options):
    kcell, cell = keras_and_jaxgru(options)
    config = cell.get_config()
    rebuilt = keras.layers.GRUCell.from_config(config)
    rebuilt.build((None, INPUT_DIM))
    rebuilt.set_weights(kcell.get_weights())
    assert_same_outputs(rebuilt, cell)
    # and Keras's config of the rebuilt cell describes the same cell
    assert jaxgru.GRUCell.from_config(rebuilt.get_config()) == cell


@HEAVY
@pytest.mark.parametrize("options", KERAS_CELLS, ids=lambda o: ",".join(o) or "defaults")
def test_config_round_trip_equality_hash_and_json(options):
    _, cell = keras_and_jaxgru(options)
    again = jaxgru.GRUCell.from_config(cell.get_config())
    assert again == cell and hash(again) == hash(cell)
    from_json = jaxgru.GRUCell.from_config(json.loads(json.dumps(cell.get_config())))
    assert from_json == cell and hash(from_json) == hash(cell)


@HEAVY
def test_legacy_implementation_0_computes_like_keras_cell():
    # tf_keras's GRUCell keeps 0 and computes it as the fused mode 2 (only dp[0] applies).
    kcell, cell = keras_and_jaxgru(dict(implementation=0, dropout=0.4))
    assert cell.implementation == kcell.implementation == 0
    assert_same_outputs(kcell, cell, seed=3)


@HEAVY
def test_keras_3_config():
    layer = keras3.layers.GRUCell(
        UNITS, seed=4, dropout=0.2, kernel_regularizer="l2", recurrent_constraint="non_neg",
        kernel_initializer=keras3.initializers.GlorotUniform(seed=1, input_axes=[0], output_axes=[1]))
    with pytest.warns(UserWarning, match=r"config\['seed'\]=4: Keras seeds its dropout masks"):
        cell = jaxgru.GRUCell.from_config(layer.get_config())
    assert cell == jaxgru.GRUCell(UNITS, dropout=0.2, kernel_regularizer="l2", recurrent_constraint="non_neg",
                                  kernel_initializer={"class_name": "GlorotUniform",
                                                      "config": {"input_axes": [0], "output_axes": [1]}})
    layer.build((None, INPUT_DIM))
    randomize(layer, 0, scale=0.4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, INPUT_DIM)).astype(np.float32)
    h = rng.normal(size=(2, UNITS)).astype(np.float32)
    expected, _ = layer(x, [h], training=False)
    out, _ = cell.step(params_of(layer.get_weights()), h, x)
    np.testing.assert_allclose(out, np.asarray(expected), atol=1e-5)
    w = params_of(layer.get_weights())["recurrent_kernel"]
    np.testing.assert_allclose(cell.constrain(params_of(layer.get_weights()))["recurrent_kernel"],
                               np.asarray(layer.recurrent_kernel.constraint(w)))


def test_equal_configs_are_equal_and_different_configs_differ():
    a = jaxgru.GRUCell(4, kernel_regularizer="l2", kernel_constraint={"class_name": "MaxNorm", "config": {}})
    b = jaxgru.GRUCell(4, kernel_regularizer={"class_name": "L2", "config": {"l2": 0.01}},
                       kernel_constraint="max_norm")
    assert a == b and hash(a) == hash(b)
    assert a != jaxgru.GRUCell(4, kernel_regularizer={"class_name": "L2", "config": {"l2": 0.02}})
    with pytest.warns(UserWarning, match="a rate of 1 or more"):
        assert jaxgru.GRUCell(4, dropout=1.5) == jaxgru.GRUCell(4, dropout=1.0)  # clipped as Keras does
