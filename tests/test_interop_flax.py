"""from_flax_linen / to_flax_linen / from_flax_nnx against Flax's own GRU cells."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_matches_rnn, random_params, randomized

import jaxgru
from jaxgru import activations
from jaxgru.interop.flax import from_flax_linen, from_flax_nnx, to_flax_linen

INPUT, UNITS, BATCH, STEPS = 3, 4, 2, 5
X = jax.random.normal(jax.random.key(0), (BATCH, STEPS, INPUT))


def assert_matches(source, cell, params):
    """Outputs, final state and input gradients of ``source = (run, config, args)`` and jaxgru."""
    assert_matches_rnn(source, cell, params, X)


def run_linen(config, variables, x):
    final, outputs = nn.RNN(nn.GRUCell(UNITS, **dict(config)), return_carry=True).apply(variables, x)
    return outputs, final


def linen_source(variables, **cell_kwargs):
    return run_linen, tuple(sorted(cell_kwargs.items())), variables


@functools.cache
def _linen_structure():
    """The params of ``nn.RNN(nn.GRUCell(UNITS))`` as Flax builds them (activations do not change them)."""
    carry = jnp.zeros((BATCH, UNITS))
    variables = jax.eval_shape(nn.GRUCell(UNITS).init, jax.random.key(3), carry, X[:, 0])
    return {"params": {"cell": variables["params"]}}


def linen_variables(seed=3):
    return randomized(_linen_structure(), seed)


def folded(params):
    """Keras params with the recurrent z/r bias moved into the input bias (what Flax can hold)."""
    bias = np.array(params["bias"])
    bias[0, :2 * UNITS] += bias[1, :2 * UNITS]
    bias[1, :2 * UNITS] = 0
    return {**params, "bias": bias}


# ------------------------------------------------------------------ linen

def test_from_flax_linen_matches_linen_rnn():
    variables = linen_variables()
    cell, params = from_flax_linen(variables)
    assert cell == jaxgru.GRUCell(UNITS, reset_after=True)
    assert {k: v.shape for k, v in params.items()} == cell.param_shapes(INPUT)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in params.values())
    np.testing.assert_array_equal(params["bias"][1, :2 * UNITS], 0)
    assert_matches(linen_source(variables), cell, params)


def test_linen_wrappers_and_inner_dict_agree():
    variables = linen_variables()
    inner = variables["params"]["cell"]
    results = [from_flax_linen(p) for p in (variables, variables["params"], inner, {"params": inner})]
    for cell, params in results[1:]:
        assert cell == results[0][0]
        for name in params:
            np.testing.assert_array_equal(params[name], results[0][1][name])


# Non-default activations shared by the tests below, so that each side compiles once:
# tf_keras's hard sigmoid (jaxgru's "hard_sigmoid", not jax.nn's) and relu.
OTHER = {"gate_fn": activations.hard_sigmoid, "activation_fn": nn.relu}
OTHER_CELL = jaxgru.GRUCell(UNITS, activation="relu", recurrent_activation="hard_sigmoid")


def test_from_flax_linen_other_activations_map_to_keras_names():
    variables = linen_variables()
    cell, params = from_flax_linen(variables, **OTHER)
    assert cell == OTHER_CELL
    assert_matches(linen_source(variables, **OTHER), cell, params)
    custom = lambda v: jnp.tanh(v) * 0.5
    cell, _ = from_flax_linen(variables, gate_fn=jax.nn.hard_sigmoid, activation_fn=custom)
    assert cell.recurrent_activation is jax.nn.hard_sigmoid and cell.activation is custom
    cell, _ = from_flax_linen(variables, gate_fn="hard_sigmoid", activation_fn=None)
    assert (cell.recurrent_activation, cell.activation) == ("hard_sigmoid", None)


def test_to_flax_linen_matches_linen_rnn_and_folds_recurrent_bias():
    cell = jaxgru.GRUCell(UNITS, reset_after=True)
    params = random_params(cell, INPUT)
    assert np.all(params["bias"][1] != 0)
    converted = to_flax_linen(params)
    assert sorted(converted) == ["hn", "hr", "hz", "in", "ir", "iz"]
    assert_matches(linen_source({"params": {"cell": converted}}), cell, params)
    back_cell, back = from_flax_linen(converted)
    assert back_cell == cell
    for name, value in folded(params).items():
        np.testing.assert_allclose(back[name], value, rtol=1e-6, atol=1e-7)


def test_to_flax_linen_other_activations():
    params = random_params(OTHER_CELL, INPUT)
    converted = to_flax_linen(params, OTHER_CELL)
    source = linen_source({"params": {"cell": converted}}, gate_fn=OTHER_CELL.recurrent_activation_fn,
                          activation_fn=OTHER_CELL.activation_fn)
    assert source[1] == linen_source({}, **OTHER)[1]
    assert_matches(source, OTHER_CELL, params)


def test_linen_round_trip_is_exact():
    inner = linen_variables()["params"]["cell"]
    inner["hn"]["bias"] = -inner["hn"]["bias"]  # negative zeros and all
    again = to_flax_linen(from_flax_linen(inner)[1])
    assert jax.tree.structure(again) == jax.tree.structure(inner)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(inner)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint32), np.asarray(b).view(np.uint32))
    params = folded(random_params(jaxgru.GRUCell(UNITS), INPUT))
    back = from_flax_linen(to_flax_linen(params))[1]
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])


def test_linen_dtype_kept():
    inner = jax.tree.map(lambda a: np.asarray(a, np.float64), linen_variables()["params"]["cell"])
    _, params = from_flax_linen(inner)
    assert all(v.dtype == np.float64 for v in params.values())
    assert all(v.dtype == np.float64 for v in jax.tree.leaves(to_flax_linen(params)))


def test_to_flax_linen_without_bias_needs_the_cell():
    cell = jaxgru.GRUCell(UNITS, use_bias=False, reset_after=True)
    params = random_params(cell, INPUT)
    with pytest.raises(ValueError, match="cell="):
        to_flax_linen(params)
    converted = to_flax_linen(params, cell)
    for name in ("ir", "iz", "in", "hn"):
        np.testing.assert_array_equal(converted[name]["bias"], 0)
    assert_matches(linen_source({"params": {"cell": converted}}), cell, params)


def test_to_flax_linen_refuses_reset_before():
    cell = jaxgru.GRUCell(UNITS, reset_after=False)
    params = random_params(cell, INPUT)
    with pytest.raises(ValueError, match="reset_after=False"):
        to_flax_linen(params)
    with pytest.raises(ValueError, match="reset_after=False"):
        to_flax_linen({k: v for k, v in params.items() if k != "bias"},
                      jaxgru.GRUCell(UNITS, use_bias=False, reset_after=False))
    with pytest.raises(ValueError, match="cell"):
        to_flax_linen(random_params(jaxgru.GRUCell(UNITS), INPUT), cell)
    with pytest.raises(TypeError, match="cell"):
        to_flax_linen(random_params(jaxgru.GRUCell(UNITS), INPUT), "gru")


def test_from_flax_linen_errors_name_the_weight():
    inner = linen_variables()["params"]["cell"]
    with pytest.raises(TypeError, match="params"):
        from_flax_linen([inner])
    with pytest.raises(ValueError, match="'hz'"):
        from_flax_linen({k: v for k, v in inner.items() if k != "hz"})
    with pytest.raises(ValueError, match=r"\['hn'\]\['bias'\]"):
        from_flax_linen({**inner, "hn": {"kernel": inner["hn"]["kernel"]}})
    with pytest.raises(ValueError, match="unexpected keys.*'extra'"):
        from_flax_linen({**inner, "extra": {"kernel": inner["hz"]["kernel"]}})
    with pytest.raises(ValueError, match=r"\['hr'\]: unexpected keys \['bias'\]"):
        from_flax_linen({**inner, "hr": {**inner["hr"], "bias": inner["hn"]["bias"]}})
    with pytest.raises(ValueError, match=r"params\['params'\]\['cell'\]\['hn'\]\['kernel'\]: expected shape \(4, 4\)"):
        from_flax_linen({"params": {"cell": {**inner, "hn": {**inner["hn"], "kernel": np.zeros((4, 5), np.float32)}}}})
    with pytest.raises(ValueError, match=r"\['in'\]\['kernel'\]"):
        from_flax_linen({**inner, "in": {**inner["in"], "kernel": np.zeros((INPUT + 1, UNITS), np.float32)}})
    with pytest.raises(TypeError, match=r"\['iz'\]\['bias'\]: dtype float64"):
        from_flax_linen({**inner, "iz": {**inner["iz"], "bias": np.zeros(UNITS)}})
    with pytest.raises(TypeError, match="gate_fn"):
        from_flax_linen(inner, gate_fn=3)
    with pytest.raises(ValueError, match="activation_fn"):
        from_flax_linen(inner, activation_fn="no_such_activation")


def test_to_flax_linen_errors_name_the_weight():
    params = random_params(jaxgru.GRUCell(UNITS), INPUT)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        to_flax_linen({k: v for k, v in params.items() if k != "recurrent_kernel"})
    with pytest.raises(ValueError, match="unexpected keys"):
        to_flax_linen({**params, "extra": params["bias"]})
    with pytest.raises(ValueError, match="'kernel'"):
        to_flax_linen({**params, "kernel": np.zeros((INPUT, 3 * UNITS + 1), np.float32)})


# ------------------------------------------------------------------ nnx

def nnx_cell(seed=4, **kwargs):
    cell = nnx.GRUCell(INPUT, UNITS, rngs=nnx.Rngs(seed), **kwargs)
    nnx.update(cell, randomized(nnx.state(cell, nnx.Param), seed))
    return cell


def run_nnx(graphdef, state, x):
    """A Python loop over the nnx.GRUCell's steps."""
    module = nnx.merge(graphdef, state)
    carry = jnp.zeros((x.shape[0], UNITS), x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        carry, y = module(carry, x[:, t])
        outputs.append(y)
    return jnp.stack(outputs, axis=1), carry


def nnx_source(module):
    return (run_nnx, *nnx.split(module))


def test_from_flax_nnx_matches_nnx_cell():
    module = nnx_cell()
    assert module.dense_h.bias is None
    cell, params = from_flax_nnx(module)
    assert cell == jaxgru.GRUCell(UNITS, reset_after=True)
    np.testing.assert_array_equal(params["bias"][1], 0)
    assert_matches(nnx_source(module), cell, params)


def test_from_flax_nnx_other_activations_map_to_keras_names_or_pass_through():
    module = nnx_cell(**OTHER)
    cell, params = from_flax_nnx(module)
    assert cell == OTHER_CELL
    assert_matches(nnx_source(module), cell, params)
    custom = lambda v: jnp.tanh(v) * 0.5
    cell, _ = from_flax_nnx(nnx_cell(gate_fn=nnx.hard_sigmoid, activation_fn=custom))
    assert cell.recurrent_activation is nnx.hard_sigmoid and cell.activation is custom
    cell, _ = from_flax_nnx(nnx_cell(gate_fn=jax.nn.sigmoid, activation_fn=jax.nn.silu))
    assert (cell.recurrent_activation, cell.activation) == ("sigmoid", "swish")


def test_from_flax_nnx_takes_a_recurrent_bias_where_dense_h_has_one():
    module = nnx_cell()
    module.dense_h = nnx.Linear(UNITS, 3 * UNITS, use_bias=True, rngs=nnx.Rngs(5))
    nnx.update(module, randomized(nnx.state(module, nnx.Param), 6))
    cell, params = from_flax_nnx(module)
    assert np.all(params["bias"][1] != 0)
    assert_matches(nnx_source(module), cell, params)


def test_from_flax_nnx_matches_linen_conversion_of_the_same_weights():
    module = nnx_cell()
    _, params = from_flax_nnx(module)
    _linen_cell, linen_params = from_flax_linen(to_flax_linen(params))
    for name in params:
        np.testing.assert_array_equal(linen_params[name], params[name])


def test_from_flax_nnx_errors():
    with pytest.raises(TypeError, match="cell: expected a flax.nnx.GRUCell"):
        from_flax_nnx(object())
    with pytest.raises(TypeError, match="from_flax_linen"):
        from_flax_nnx(linen_variables())
    with pytest.raises(TypeError, match="cell: expected a flax.nnx.GRUCell"):
        from_flax_nnx(nnx.LSTMCell(INPUT, UNITS, rngs=nnx.Rngs(0)))
    module = nnx_cell()
    module.dense_h.kernel.set_value(jnp.zeros((UNITS, 3 * UNITS + 3)))
    with pytest.raises(ValueError, match="cell.dense_h.kernel"):
        from_flax_nnx(module)
    module = nnx_cell()
    module.dense_i.kernel.set_value(jnp.zeros((INPUT, 3 * UNITS - 3)))
    with pytest.raises(ValueError, match="cell.dense_i.kernel"):
        from_flax_nnx(module)
    module = nnx_cell()
    module.gate_fn = "no_such_activation"
    with pytest.raises(ValueError, match="cell.gate_fn"):
        from_flax_nnx(module)
