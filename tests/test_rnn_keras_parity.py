"""`jaxgru.rnn` / `jaxgru.bidirectional` against tf_keras's GRU and Bidirectional(GRU) layers.

Every masked call uses `ROW_MASKS`: each batch row carries one padding pattern (none, right,
left, mixed, fully masked), so one Keras call covers all of them (rows are independent).
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
import jaxgru
from keras_reference import params_of, randomize
from references import keras, tf, HEAVY

pytestmark = HEAVY  # every test here runs TensorFlow

B, T, D, U = 5, 6, 3, 4
ATOL = 1e-5
CELL_OPTIONS = ("activation", "recurrent_activation", "use_bias", "implementation", "reset_after",
                "dropout", "recurrent_dropout")

ROW_MASKS = np.array([
    [1, 1, 1, 1, 1, 1],  # no padding
    [1, 1, 1, 1, 0, 0],  # right padding
    [0, 0, 1, 1, 1, 1],  # left padding
    [1, 0, 1, 1, 0, 1],  # mixed
    [0, 0, 0, 0, 0, 0],  # fully masked row
], bool)

_rng = np.random.default_rng(42)
X = _rng.normal(size=(B, T, D)).astype(np.float32)
H0 = _rng.normal(size=(B, U)).astype(np.float32)
H0_BACKWARD = _rng.normal(size=(B, U)).astype(np.float32)


def keras_gru(seed=0, scale=0.5, **options):
    """A built tf_keras ``GRU(return_state=True)`` with random weights; same seed, same weights."""
    layer = keras.layers.GRU(U, return_state=True, **options)
    layer.build((None, T, D))
    randomize(layer, seed, scale)
    return layer


def jax_cell(options):
    return jaxgru.GRUCell(U, **{k: v for k, v in options.items() if k in CELL_OPTIONS})


def keras_call(layer, mask, initial_state, training=False):
    kwargs = {"training": training}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    if initial_state is not None:
        kwargs["initial_state"] = [tf.constant(s) for s in initial_state]
    return [t.numpy() for t in layer(tf.constant(X), **kwargs)]


assert_close = functools.partial(helpers.assert_close, atol=ATOL)


def run_jitted(fn, params, calls):
    """``[fn(params, X, **static, **arrays) for static, arrays in calls]`` as one jitted
    program: one compile for many configurations keeps the suite fast."""
    statics, arrays = zip(*calls)
    return jax.jit(lambda p, a: [fn(p, X, **s, **kw) for s, kw in zip(statics, a)])(params, list(arrays))


def check_gru(layer_options, masks=(None, ROW_MASKS), initial_states=(None, H0), scale=0.5):
    """Compares `jaxgru.rnn` with Keras GRU layers built from each dict of ``layer_options``
    (sharing one random weight set), over ``masks`` x ``initial_states``."""
    calls, expected = [], []
    for options in layer_options:
        options = dict(options)
        time_chunk = options.pop("time_chunk", None)  # jaxgru's only
        layer = keras_gru(scale=scale, **options)
        static = dict(cell=jax_cell(options), go_backwards=options.get("go_backwards", False),
                      return_sequences=options.get("return_sequences", False),
                      zero_output_for_mask=options.get("zero_output_for_mask", False), time_chunk=time_chunk)
        for mask, h0 in itertools.product(masks, initial_states):
            calls.append((static, dict(mask=mask, initial_state=h0)))
            expected.append(keras_call(layer, mask, None if h0 is None else [h0]))
    params = params_of(layer.get_weights())
    results = run_jitted(lambda p, x, cell, **kw: jaxgru.rnn(cell, p, x, **kw), params, calls)
    for (output, state), (expected_output, expected_state) in zip(results, expected):
        assert_close(output, expected_output)
        assert_close(state, expected_state)
    return results


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_layer_matches_keras(reset_after, go_backwards):
    # return_sequences x zero_output_for_mask x {no mask, each padding pattern} x {zero, given} initial state
    check_gru([dict(reset_after=reset_after, go_backwards=go_backwards, return_sequences=return_sequences,
                    zero_output_for_mask=zero_output_for_mask)
               for return_sequences, zero_output_for_mask in itertools.product([True, False], [True, False])])


@pytest.mark.parametrize("time_chunk", [1, 2, 4])
@pytest.mark.parametrize("reset_after", [True, False])
def test_time_chunked_projection_matches_keras(reset_after, time_chunk):
    # T = 6: chunks of 1 and 2 divide it, chunks of 4 leave a remainder of 2; masked steps
    # and carried outputs cross the chunk boundaries
    check_gru([dict(reset_after=reset_after, go_backwards=go_backwards, return_sequences=return_sequences,
                    zero_output_for_mask=not go_backwards, time_chunk=time_chunk)
               for go_backwards, return_sequences in itertools.product([False, True], [True, False])],
              initial_states=(H0,))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("options", [
    dict(activation="relu", recurrent_activation="hard_sigmoid"),
    dict(activation=None, recurrent_activation="softsign"),
    dict(implementation=1, unroll=True),  # unroll takes Keras off its cuDNN-compatible path
    dict(use_bias=False),
    dict(activation="elu", recurrent_activation="tanh", implementation=1, use_bias=False),
], ids=["relu-hard_sigmoid", "linear-softsign", "implementation1", "no-bias", "all"])
def test_gru_layer_options_match_keras(options, reset_after):
    # (go_backwards with zero_output_for_mask is left out: tf_keras's unrolled backend.rnn
    # applies the input-order mask to the reversed outputs there; its scan path is covered above)
    check_gru([dict(options, reset_after=reset_after, go_backwards=go_backwards, return_sequences=True,
                    zero_output_for_mask=not go_backwards) for go_backwards in (False, True)],
              masks=(ROW_MASKS,), initial_states=(H0,), scale=0.3)


def test_last_output_is_keras_last_carried_output():
    # the last output with a mask: the last valid step's output, or zeros with
    # zero_output_for_mask when the last step is masked (rows 1 and 4 of ROW_MASKS)
    results = check_gru([dict(return_sequences=False, zero_output_for_mask=zero_output_for_mask)
                         for zero_output_for_mask in (False, True)], masks=(ROW_MASKS,), initial_states=(H0,))
    (carried, final_carried), (zeroed, final_zeroed) = jax.tree.map(np.asarray, results)
    np.testing.assert_array_equal(zeroed[[1, 4]], 0.0)
    np.testing.assert_array_equal(zeroed[[0, 2, 3]], carried[[0, 2, 3]])
    np.testing.assert_array_equal(carried[4], 0.0)  # no valid step: the zero initial output
    assert np.all(carried[:4] != 0.0)
    np.testing.assert_array_equal(final_carried[4], H0[4])  # the state is carried through
    np.testing.assert_array_equal(final_zeroed, final_carried)


@pytest.mark.parametrize("rates,implementation", [
    ((0.3, 0.4), 1),
    ((0.0, 0.5), 1),
    ((0.3, 0.0), 1),
    ((0.3, 0.0), 2),
])
def test_dropout_with_keras_masks_matches_keras_layer(rates, implementation):
    """Keras's generic layer path (here forced by unroll) draws its masks once per call,
    caches them in its cell and uses them at every step; `rnn(dropout_masks=...)` with those masks
    gives the layer's training output."""
    dropout, recurrent_dropout = rates
    calls, expected = [], []
    for go_backwards, mask in itertools.product([False, True], [None, ROW_MASKS]):
        options = dict(dropout=dropout, recurrent_dropout=recurrent_dropout, implementation=implementation,
                       go_backwards=go_backwards, return_sequences=True, unroll=True)
        layer = keras_gru(**options)
        expected.append(keras_call(layer, mask, [H0], training=True))
        # the masks that call just cached in the layer's cell
        dp = layer.cell.get_dropout_mask_for_cell(tf.constant(X[:, 0]), True, count=3)
        rdp = layer.cell.get_recurrent_dropout_mask_for_cell(tf.constant(H0), True, count=3)
        masks = jaxgru.DropoutMasks(inputs=None if dp is None else jnp.stack([m.numpy() for m in dp]),
                                    recurrent=None if rdp is None else jnp.stack([m.numpy() for m in rdp]))
        assert (masks.inputs is not None) == (dropout > 0) and (masks.recurrent is not None) == (recurrent_dropout > 0)
        static = dict(cell=jax_cell(options), go_backwards=go_backwards)
        calls.append((dict(static, training=True), dict(mask=mask, initial_state=H0, dropout_masks=masks)))
        calls.append((dict(static, training=False), dict(mask=mask, initial_state=H0)))
    params = params_of(layer.get_weights())
    results = run_jitted(lambda p, x, cell, **kw: jaxgru.rnn(cell, p, x, **kw), params, calls)
    for (expected_output, expected_state), trained, evaluated in zip(expected, results[::2], results[1::2]):
        assert_close(trained[0], expected_output)
        assert_close(trained[1], expected_state)
        # the masks matter: without training the result differs
        assert np.abs(np.asarray(evaluated[0]) - expected_output).max() > 1e-3


# ---------------------------------------------------------------------------- Bidirectional
def keras_bidirectional(merge_mode, return_sequences, reset_after, seed=1):
    layer = keras.layers.Bidirectional(
        keras.layers.GRU(U, return_sequences=return_sequences, return_state=True, reset_after=reset_after),
        merge_mode=merge_mode)
    layer.build((None, T, D))
    randomize(layer, seed)
    return layer


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_matches_keras(merge_mode):
    # reset_after x return_sequences x {(no mask, no state), (each padding pattern, state pair)}
    calls, expected = [], []
    for reset_after, return_sequences in itertools.product([True, False], [True, False]):
        layer = keras_bidirectional(merge_mode, return_sequences, reset_after)
        weights = layer.get_weights()
        params = {"forward": params_of(weights[:3]), "backward": params_of(weights[3:])}
        static = dict(cell=jaxgru.GRUCell(U, reset_after=reset_after), merge_mode=merge_mode,
                      return_sequences=return_sequences)
        for mask, initial_state in [(None, None), (ROW_MASKS, (H0, H0_BACKWARD))]:
            calls.append((static, dict(params=params, mask=mask, initial_state=initial_state)))
            expected.append(keras_call(layer, mask, initial_state))
    results = run_jitted(lambda _, x, cell, params, **kw: jaxgru.bidirectional(cell, params, x, **kw), None, calls)
    for (outputs, (final_fw, final_bw)), keras_outputs in zip(results, expected):
        if merge_mode is None:
            assert isinstance(outputs, tuple) and len(outputs) == 2
            assert_close(outputs[0], keras_outputs[0])
            assert_close(outputs[1], keras_outputs[1])
        else:
            assert_close(outputs, keras_outputs[0])
        assert_close(final_fw, keras_outputs[-2])
        assert_close(final_bw, keras_outputs[-1])
