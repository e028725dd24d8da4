"""Bad inputs to `jaxgru.rnn` and `jaxgru.bidirectional` fail at trace time, naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru

B, T, D, U = 2, 3, 4, 5
CELL = jaxgru.GRUCell(U)
PARAMS = CELL.init(jax.random.key(0), D)
X = jnp.ones((B, T, D))
BI_PARAMS = {"forward": PARAMS, "backward": PARAMS}


def traced(fn, *args, **kwargs):
    """Runs ``fn`` under `jax.jit`, so every check must happen at trace time."""
    return jax.jit(lambda *a: fn(*a, **kwargs))(*args)


@pytest.mark.parametrize("runner", ["rnn", "bidirectional"])
@pytest.mark.parametrize(
    "inputs,kwargs,error,match",
    [
        (jnp.ones((D,)), {}, ValueError, r"inputs: expected \(\*batch, T, D\) with any number of batch axes"),
        (jnp.ones(()), {"time_major": True}, ValueError, r"inputs: expected \(T, \*batch, D\)"),
        (jnp.ones((B, T, D + 1)), {}, ValueError, "inputs: expected feature dimension 4"),
        (jnp.ones((B, 0, D)), {}, ValueError, r"inputs: .*T == 0"),
        (jnp.ones((0, B, D)), {"time_major": True}, ValueError, r"inputs: .*T == 0"),
        (X, {"mask": jnp.ones((T, B), bool)}, ValueError, r"mask: expected shape \(\*batch, T\) = \(2, 3\)"),
        (X, {"mask": jnp.ones((T, B), bool), "time_major": True}, ValueError,
         r"mask: expected shape \(T, \*batch\) with time_major = \(2, 3\)"),
        (X, {"mask": jnp.ones((B, T, 1), bool)}, ValueError, "mask: expected shape"),
        (X, {"mask": jnp.ones((B,), bool)}, ValueError, "mask: expected shape"),
        (X, {"mask": jnp.ones((B, T), jnp.float32)}, TypeError, "mask: expected booleans.*float32"),
        (X, {"mask": np.ones((B, T), np.float64)}, TypeError, "mask: expected booleans"),
        (X, {"time_chunk": 0}, ValueError, "time_chunk: expected a positive integer, got 0"),
        (X, {"time_chunk": 2.0}, TypeError, "time_chunk: expected an integer"),
    ],
)
def test_bad_inputs_and_masks(runner, inputs, kwargs, error, match):
    fn = jaxgru.rnn if runner == "rnn" else jaxgru.bidirectional
    params = PARAMS if runner == "rnn" else BI_PARAMS
    with pytest.raises(error, match=match):
        traced(lambda p, x: fn(CELL, p, x, **kwargs), params, inputs)


@pytest.mark.parametrize("state", [jnp.zeros((B, U + 1)), jnp.zeros((B + 1, U)), jnp.zeros((U,)),
                                   jnp.zeros((1, B, U)), [jnp.zeros((B, U)), jnp.zeros((B, U))]])
def test_rnn_initial_state_wrong_shape(state):
    with pytest.raises(ValueError, match="initial_state"):
        traced(lambda s: jaxgru.rnn(CELL, PARAMS, X, initial_state=s), state)


def test_integer_inputs_and_states_are_rejected():
    with pytest.raises(TypeError, match=r"inputs: expected a floating-point array \(\*batch, T, D\), got dtype int32"):
        jaxgru.rnn(CELL, PARAMS, jnp.ones((B, T, D), jnp.int32))
    with pytest.raises(TypeError, match="inputs: expected a floating-point array"):
        jaxgru.bidirectional(CELL, BI_PARAMS, np.ones((B, T, D), bool))
    with pytest.raises(TypeError, match="initial_state: expected a floating-point array .*got dtype int32"):
        jaxgru.rnn(CELL, PARAMS, X, initial_state=jnp.zeros((B, U), jnp.int32))


def test_integer_masks_are_booleans():
    mask = np.array([[1, 0, 1], [0, 0, 0]])
    out_int, final_int = jaxgru.rnn(CELL, PARAMS, X, mask=mask, zero_output_for_mask=True)
    out_bool, final_bool = jaxgru.rnn(CELL, PARAMS, X, mask=mask.astype(bool), zero_output_for_mask=True)
    np.testing.assert_array_equal(out_int, out_bool)
    np.testing.assert_array_equal(final_int, final_bool)


def test_rnn_initial_state_as_one_element_list_like_keras():
    h = jnp.full((B, U), 0.3)
    out_list, final_list = jaxgru.rnn(CELL, PARAMS, X, initial_state=[h])
    out, final = jaxgru.rnn(CELL, PARAMS, X, initial_state=h)
    np.testing.assert_array_equal(out_list, out)
    np.testing.assert_array_equal(final_list, final)


@pytest.mark.parametrize("state", [jnp.zeros((B, U)), (jnp.zeros((B, U)),),
                                   (jnp.zeros((B, U)), jnp.zeros((B, U + 1)))])
def test_bidirectional_initial_state_wrong(state):
    with pytest.raises(ValueError, match="initial_state"):
        jaxgru.bidirectional(CELL, BI_PARAMS, X, initial_state=state)


@pytest.mark.parametrize("merge_mode", ["max", "CONCAT", "", 0])
def test_unknown_merge_mode(merge_mode):
    with pytest.raises(ValueError, match="merge_mode"):
        jaxgru.bidirectional(CELL, BI_PARAMS, X, merge_mode=merge_mode)


@pytest.mark.parametrize(
    "params,error,match",
    [
        (PARAMS, ValueError, "params: expected {'forward'"),  # one direction's params, not the pair
        ({"forward": PARAMS}, ValueError, "params: expected {'forward'"),
        ({"forward": PARAMS, "backward": PARAMS, "extra": PARAMS}, ValueError, "params: expected {'forward'"),
        ((PARAMS, PARAMS), ValueError, "params: expected {'forward'"),
        ({"forward": PARAMS, "backward": jaxgru.GRUCell(U + 1).init(jax.random.key(1), D)}, ValueError,
         r"params\['backward'\]: params\['kernel'\]"),
        ({"forward": {"kernel": PARAMS["kernel"]}, "backward": PARAMS}, ValueError,
         r"params\['forward'\]: params: missing 'recurrent_kernel'"),
        ({"forward": PARAMS, "backward": jaxgru.GRUCell(U).init(jax.random.key(1), D + 1)}, ValueError,
         "params: the forward kernel takes D=4 features and the backward kernel D=5"),
        ({"forward": PARAMS, "backward": [1.0]}, TypeError, r"params\['backward'\]: params: expected a dict"),
    ],
)
def test_bidirectional_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        jaxgru.bidirectional(CELL, params, X)


@pytest.mark.parametrize("cell", [U, "gru", (CELL,), (CELL, CELL, CELL), (CELL, U)])
def test_bidirectional_bad_cell(cell):
    with pytest.raises(TypeError, match="cell"):
        jaxgru.bidirectional(cell, BI_PARAMS, X)


def test_bidirectional_cell_pair():
    wide = jaxgru.GRUCell(U + 2)
    params = {"forward": PARAMS, "backward": wide.init(jax.random.key(1), D)}
    with pytest.raises(ValueError, match="cell: merge_mode='sum' needs equal units"):
        jaxgru.bidirectional((CELL, wide), params, X, merge_mode="sum")
    outputs, (final_fw, final_bw) = jaxgru.bidirectional((CELL, wide), params, X, merge_mode="concat")
    assert outputs.shape == (B, T, 2 * U + 2) and final_fw.shape == (B, U) and final_bw.shape == (B, U + 2)


@pytest.mark.parametrize(
    "params,match",
    [
        ({k: v for k, v in PARAMS.items() if k != "bias"}, "params: missing 'bias'"),
        ({**PARAMS, "kernel": jnp.ones((D, 3 * U + 3))}, r"params\['kernel'\]"),
        ({**PARAMS, "recurrent_kernel": jnp.ones((U, U))}, r"params\['recurrent_kernel'\]"),
    ],
)
def test_rnn_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        jaxgru.rnn(CELL, params, X)


def test_dropout_training_without_rng():
    cell = jaxgru.GRUCell(U, dropout=0.5)
    with pytest.raises(ValueError, match="rng"):
        jaxgru.rnn(cell, PARAMS, X, training=True)
    with pytest.raises(ValueError, match="rng"):
        jaxgru.bidirectional(cell, BI_PARAMS, X, training=True)


@pytest.mark.parametrize("masks,error,match", [
    (jaxgru.DropoutMasks(inputs=jnp.ones((3, B, D + 1))), ValueError, r"masks\.inputs: expected shape \(3, 2, 4\)"),
    (jaxgru.DropoutMasks(inputs=jnp.ones((B, D))), ValueError, r"masks\.inputs"),
    (jaxgru.DropoutMasks(recurrent=jnp.ones((3, B + 1, U))), ValueError, r"masks\.recurrent"),
    ((jnp.ones((3, B, D)), None, None), TypeError, "masks: expected jaxgru.DropoutMasks"),
])
def test_rnn_bad_explicit_dropout_masks(masks, error, match):
    cell = jaxgru.GRUCell(U, dropout=0.5, recurrent_dropout=0.5)
    with pytest.raises(error, match=match):
        jaxgru.rnn(cell, PARAMS, X, training=True, dropout_masks=masks)
