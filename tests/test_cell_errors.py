"""Every bad input to GRUCell raises a ValueError/TypeError that names the argument."""

import jax
import jax.numpy as jnp
import pytest

import jaxgru

U, D, B = 4, 3, 2


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(units=0), ValueError, "units: expected a positive integer, got 0"),
    (dict(units=-3), ValueError, "units"),
    (dict(units=2.5), TypeError, "units: expected an integer"),
    (dict(units="4"), TypeError, "units"),
    (dict(units=True), TypeError, "units"),
    (dict(units=4, activation="tanhh"), ValueError, "activation: unknown activation 'tanhh'"),
    (dict(units=4, recurrent_activation="sigmod"), ValueError, "recurrent_activation: unknown"),
    (dict(units=4, activation=3), TypeError, "activation"),
    (dict(units=4, activation={"class_name": "function"}), ValueError, "activation: an activation config"),
    (dict(units=4, kernel_initializer="glorot"), ValueError, "kernel_initializer: unknown initializer 'glorot'"),
    (dict(units=4, recurrent_initializer=None), ValueError, "recurrent_initializer: an initializer is required"),
    (dict(units=4, bias_initializer={"class_name": "Nope", "config": {}}), ValueError,
     "bias_initializer: unknown initializer class 'Nope'"),
    (dict(units=4, bias_initializer={"config": {}}), ValueError, "bias_initializer: .*'class_name'"),
    (dict(units=4, kernel_initializer={"class_name": "Orthogonal", "config": {"gian": 2}}), ValueError,
     "kernel_initializer: bad config for initializer Orthogonal"),
    (dict(units=4, kernel_initializer={"class_name": "VarianceScaling", "config": {"mode": "fan"}}), ValueError,
     "kernel_initializer: bad config.*mode"),
    (dict(units=4, kernel_initializer={"class_name": "VarianceScaling", "config": {"scale": -1.0}}), ValueError,
     "kernel_initializer: bad config.*scale"),
    (dict(units=4, kernel_initializer=1.0), TypeError, "kernel_initializer"),
    (dict(units=4, kernel_regularizer="l3"), ValueError, "kernel_regularizer: unknown regularizer 'l3'"),
    (dict(units=4, recurrent_regularizer={"class_name": "L2", "config": {"l2": "big"}}), ValueError,
     "recurrent_regularizer: bad config for regularizer L2"),
    (dict(units=4, bias_regularizer={"class_name": "L1", "config": {"l1": float("nan")}}), ValueError,
     "bias_regularizer"),
    (dict(units=4, kernel_regularizer={"class_name": "OrthogonalRegularizer", "config": {"mode": "diag"}}),
     ValueError, "kernel_regularizer: bad config.*mode"),
    (dict(units=4, kernel_constraint="max"), ValueError, "kernel_constraint: unknown constraint 'max'"),
    (dict(units=4, recurrent_constraint={"class_name": "MaxNorm", "config": {"maxvalue": 2}}), ValueError,
     "recurrent_constraint: bad config for constraint MaxNorm"),
    (dict(units=4, bias_constraint=[1]), TypeError, "bias_constraint"),
    (dict(units=4, implementation=3), ValueError, "implementation: expected 0, 1 or 2, got 3"),
    (dict(units=4, implementation=-1), ValueError, "implementation"),
    (dict(units=4, implementation=1.0), TypeError, "implementation: expected an integer"),
    (dict(units=4, implementation="2"), TypeError, "implementation"),
    (dict(units=4, use_bias="yes"), TypeError, "use_bias: expected a bool"),
    (dict(units=4, reset_after=1), TypeError, "reset_after: expected a bool"),
    (dict(units=4, dropout="0.5"), TypeError, "dropout: expected a float"),
    (dict(units=4, recurrent_dropout=float("nan")), ValueError, "recurrent_dropout.*NaN"),
    (dict(units=4, dropout=None), TypeError, "dropout"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxgru.GRUCell(**kwargs)


def test_an_initializer_is_not_a_regularizer():
    init = jaxgru.GRUCell(U).kernel_initializer
    with pytest.raises(TypeError, match="kernel_regularizer: expected a regularizer, got the initializer GlorotUniform"):
        jaxgru.GRUCell(U, kernel_regularizer=init)


@pytest.mark.parametrize("config,error,match", [
    ({"units": 4, "unroll": True}, ValueError, r"config: unknown keys \['unroll'\]"),
    ([("units", 4)], TypeError, "config: expected a dict"),
    ({"units": 4, "implementation": 5}, ValueError, "implementation"),
])
def test_bad_configs(config, error, match):
    with pytest.raises(error, match=match):
        jaxgru.GRUCell.from_config(config)


@pytest.fixture
def setup():
    cell = jaxgru.GRUCell(U)
    return cell, cell.init(jax.random.key(0), D), jnp.zeros((B, U)), jnp.ones((B, D))


@pytest.mark.parametrize("change,error,match", [
    (lambda p: {k: v for k, v in p.items() if k != "kernel"}, ValueError, r"params: missing 'kernel'"),
    (lambda p: {k: v for k, v in p.items() if k != "recurrent_kernel"}, ValueError,
     r"params: missing 'recurrent_kernel' of shape \(4, 12\)"),
    (lambda p: {k: v for k, v in p.items() if k != "bias"}, ValueError, r"params: missing 'bias' of shape \(2, 12\)"),
    (lambda p: {**p, "kernel": p["kernel"][:, :9]}, ValueError, r"params\['kernel'\]: expected shape \(3, 12\)"),
    (lambda p: {**p, "kernel": p["kernel"][0]}, ValueError, r"params\['kernel'\]: expected shape \(D, 12\)"),
    (lambda p: {**p, "recurrent_kernel": p["recurrent_kernel"].T}, ValueError,
     r"params\['recurrent_kernel'\]: expected shape \(4, 12\)"),
    (lambda p: {**p, "bias": p["bias"][0]}, ValueError, r"params\['bias'\]: expected shape \(2, 12\)"),
    (lambda p: {**p, "extra": p["bias"]}, ValueError, r"params: unexpected keys \['extra'\]"),
    (lambda p: {**p, "kernel": p["kernel"].astype(jnp.int32)}, TypeError, r"params\['kernel'\]: expected a floating"),
    (lambda p: list(p.values()), TypeError, "params: expected a dict"),
])
def test_bad_params(setup, change, error, match):
    cell, params, h, x = setup
    with pytest.raises(error, match=match):
        cell.step(change(params), h, x)
    with pytest.raises(error, match=match):
        cell.penalty(change(params))
    with pytest.raises(error, match=match):
        cell.constrain(change(params))


def test_params_without_bias_when_use_bias_false(setup):
    _, params, h, x = setup
    cell = jaxgru.GRUCell(U, use_bias=False)
    with pytest.raises(ValueError, match=r"params: unexpected keys \['bias'\] \(use_bias=False\)"):
        cell.step(params, h, x)


def test_reset_before_bias_shape(setup):
    _, params, h, x = setup
    with pytest.raises(ValueError, match=r"params\['bias'\]: expected shape \(12,\)"):
        jaxgru.GRUCell(U, reset_after=False).step(params, h, x)


@pytest.mark.parametrize("state,x,error,match", [
    (jnp.zeros((B, U)), jnp.ones((B, D + 1)), ValueError, r"x: expected last dimension 3 .*got shape \(2, 4\)"),
    (jnp.zeros((B, U)), jnp.ones(()), ValueError, "x: expected last dimension 3"),
    (jnp.zeros((B, U + 1)), jnp.ones((B, D)), ValueError, r"state: expected shape \(2, 4\), got \(2, 5\)"),
    (jnp.zeros((B + 1, U)), jnp.ones((B, D)), ValueError, r"state: expected shape \(2, 4\), got \(3, 4\)"),
    (jnp.zeros((U,)), jnp.ones((B, D)), ValueError, r"state: expected shape \(2, 4\), got \(4,\)"),
    ([jnp.zeros((B, U))] * 2, jnp.ones((B, D)), ValueError, "state: a GRU has one state tensor"),
    (jnp.zeros((B, U), jnp.int32), jnp.ones((B, D)), TypeError, "state: expected a floating-point array"),
])
def test_bad_state_and_inputs(setup, state, x, error, match):
    cell, params, _, _ = setup
    with pytest.raises(error, match=match):
        cell.step(params, state, x)
    with pytest.raises(error, match=match):
        jax.jit(cell.step)(params, state, x)  # at trace time too


def test_bad_masks():
    cell = jaxgru.GRUCell(U, dropout=0.5, recurrent_dropout=0.5)
    params = cell.init(jax.random.key(0), D)
    h, x = jnp.zeros((B, U)), jnp.ones((B, D))
    good = cell.dropout_masks(jax.random.key(1), B, D)
    for bad, match in [
        (good._replace(inputs=good.inputs[:2]), r"masks\.inputs: expected shape \(3, 2, 3\), got \(2, 2, 3\)"),
        (good._replace(inputs=good.inputs[..., :2]), r"masks\.inputs: expected shape \(3, 2, 3\)"),
        (good._replace(recurrent=good.inputs), r"masks\.recurrent: expected shape \(3, 2, 4\), got \(3, 2, 3\)"),
        (cell.dropout_masks(jax.random.key(1), B + 1, D), r"masks\.inputs: expected shape \(3, 2, 3\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            cell.step(params, h, x, training=True, dropout_masks=bad)
    with pytest.raises(TypeError, match="masks: expected jaxgru.DropoutMasks, got tuple"):
        cell.step(params, h, x, training=True, dropout_masks=(good.inputs, good.recurrent))


@pytest.mark.parametrize("call,error,match", [
    (lambda c: c.init(jax.random.key(0), 0), ValueError, "input_dim: expected a positive integer"),
    (lambda c: c.init(jax.random.key(0), 2.0), TypeError, "input_dim: expected an integer"),
    (lambda c: c.initial_state(0), ValueError, "batch_size: expected a positive integer"),
    (lambda c: c.initial_state((2, 3)), TypeError, "batch_size"),
    (lambda c: c.dropout_masks(jax.random.key(0), 2, -1), ValueError, "input_dim"),
    (lambda c: c.dropout_masks(jax.random.key(0), None, 3), TypeError, "batch_size"),
])
def test_bad_sizes(call, error, match):
    with pytest.raises(error, match=match):
        call(jaxgru.GRUCell(U, dropout=0.1))


def test_initializer_returning_the_wrong_shape():
    cell = jaxgru.GRUCell(U, recurrent_initializer=lambda key, shape, dtype: jnp.zeros((U, U), dtype))
    with pytest.raises(ValueError, match=r"recurrent_initializer: returned shape \(4, 4\) for 'recurrent_kernel'"):
        cell.init(jax.random.key(0), D)


def test_regularizer_returning_a_non_scalar(setup):
    _, params, _, _ = setup
    cell = jaxgru.GRUCell(U, bias_regularizer=lambda w: w**2)
    with pytest.raises(ValueError, match="bias_regularizer: expected a scalar"):
        cell.penalty(params)


def test_orthogonal_regularizer_on_a_1d_bias():
    cell = jaxgru.GRUCell(U, reset_after=False, bias_regularizer="orthogonal_regularizer")
    params = cell.init(jax.random.key(0), D)
    with pytest.raises(ValueError, match="OrthogonalRegularizer needs a 2-D weight"):
        cell.penalty(params)
