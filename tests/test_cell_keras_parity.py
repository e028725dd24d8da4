"""GRUCell.step against tf_keras.layers.GRUCell, with Keras's own dropout masks."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgru
from keras_reference import keras_cell, params_of
from references import tf, HEAVY

pytestmark = HEAVY  # every test here runs TensorFlow

ACTIVATION_PAIRS = [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), (None, "softsign"), ("gelu", "swish"),
                    ("elu", "selu"), ("softplus", "exponential")]
DROPOUTS = [(0.0, 0.0), (0.3, 0.0), (0.25, 0.4), (0.0, 0.5)]


def run_both(units, input_dim, batch, steps, seed, scale=0.5, **options):
    """Runs ``steps`` steps of both cells from the same state with Keras's cached masks."""
    kcell = keras_cell(units, input_dim, seed=seed, scale=scale, **options)
    cell = jaxgru.GRUCell(units, **options)
    params = params_of(kcell.get_weights())
    rng = np.random.default_rng(seed + 1)
    xs = rng.normal(size=(steps, batch, input_dim)).astype(np.float32)
    h = rng.normal(size=(batch, units)).astype(np.float32)
    training = options.get("dropout", 0) > 0 or options.get("recurrent_dropout", 0) > 0
    masks = None
    if training:
        kcell.reset_dropout_mask()
        kcell.reset_recurrent_dropout_mask()
        dp = kcell.get_dropout_mask_for_cell(tf.constant(xs[0]), training=True, count=3)
        rdp = kcell.get_recurrent_dropout_mask_for_cell(tf.constant(h), training=True, count=3)
        masks = jaxgru.DropoutMasks(
            inputs=None if dp is None else jnp.stack([np.asarray(m) for m in dp]),
            recurrent=None if rdp is None else jnp.stack([np.asarray(m) for m in rdp]),
        )
    k_state, j_state = tf.constant(h), jnp.asarray(h)
    for x in xs:
        k_out, k_state = kcell(tf.constant(x), k_state, training=training)
        j_out, j_state = cell.step(params, j_state, jnp.asarray(x), training=training, dropout_masks=masks)
        np.testing.assert_allclose(np.asarray(j_out), k_out.numpy(), atol=1e-5, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(j_state), k_state.numpy(), atol=1e-5, rtol=1e-6)
    return kcell, cell


@pytest.mark.parametrize(
    "reset_after,implementation,use_bias,activations,dropouts",
    list(itertools.product([True, False], [0, 1, 2], [True, False], ACTIVATION_PAIRS[:3], DROPOUTS)),
)
def test_step_matches_keras(reset_after, implementation, use_bias, activations, dropouts):
    activation, recurrent_activation = activations
    dropout, recurrent_dropout = dropouts
    run_both(5, 3, batch=4, steps=3, seed=7, reset_after=reset_after, implementation=implementation,
             use_bias=use_bias, activation=activation, recurrent_activation=recurrent_activation,
             dropout=dropout, recurrent_dropout=recurrent_dropout)


@pytest.mark.parametrize("activations", ACTIVATION_PAIRS[3:])
@pytest.mark.parametrize("reset_after", [True, False])
def test_more_activations_match_keras(activations, reset_after):
    # small weights keep the unbounded activations (exponential, elu) in float32's exact range
    run_both(4, 6, batch=3, steps=2, seed=3, scale=0.2, reset_after=reset_after, activation=activations[0],
             recurrent_activation=activations[1])


@settings(max_examples=15, deadline=None)
@given(units=st.integers(1, 9), input_dim=st.integers(1, 9), batch=st.integers(1, 5),
       reset_after=st.booleans(), implementation=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_shapes_match_keras(units, input_dim, batch, reset_after, implementation, seed):
    run_both(units, input_dim, batch=batch, steps=2, seed=seed, reset_after=reset_after,
             implementation=implementation)


def test_recurrent_dropout_forces_implementation_1_like_keras():
    kcell, cell = run_both(3, 2, batch=2, steps=1, seed=0, implementation=2, dropout=0.2, recurrent_dropout=0.3)
    assert kcell.implementation == cell.implementation == 1


def test_state_as_one_element_list_like_keras():
    kcell = keras_cell(3, 2)
    cell = jaxgru.GRUCell(3)
    params = params_of(kcell.get_weights())
    x = np.ones((2, 2), np.float32)
    h = np.zeros((2, 3), np.float32)
    k_out, k_state = kcell(tf.constant(x), [tf.constant(h)])
    out, state = cell.step(params, [jnp.asarray(h)], jnp.asarray(x))
    assert isinstance(state, list) and isinstance(k_state, list) and len(state) == 1
    np.testing.assert_allclose(np.asarray(state[0]), k_state[0].numpy(), atol=1e-5)
