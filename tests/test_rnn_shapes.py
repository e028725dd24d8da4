"""Sequence lengths instead of masks, unbatched and many-batch-axis inputs, and empty
batches, in `jaxgru.rnn` and `jaxgru.bidirectional`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru

T, D, U = 6, 3, 4
CELL = jaxgru.GRUCell(U, dropout=0.3, recurrent_dropout=0.2)
PARAMS = CELL.init(jax.random.key(0), D)
BI_PARAMS = {"forward": PARAMS, "backward": CELL.init(jax.random.key(1), D)}
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def inputs(*batch, seed=2):
    return jax.random.normal(jax.random.key(seed), (*batch, T, D))


# ---------------------------------------------------------------- seq_lengths
LENGTHS = np.array([6, 2, 0, 4])


@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
def test_seq_lengths_equal_each_row_run_alone_over_its_length(gradient):
    """Right padding: the final state of row b is the state after its first L_b steps, run
    with no mask at all; outputs past the length repeat the last valid one."""
    x = inputs(len(LENGTHS))
    x = jnp.where(np.arange(T)[None, :, None] < LENGTHS[:, None, None], x, jnp.nan)  # padding never matters

    def ours(params):
        return jaxgru.rnn(CELL, params, x, seq_lengths=LENGTHS, gradient=gradient)

    outputs, final = ours(PARAMS)
    for b, length in enumerate(LENGTHS):
        if length == 0:
            np.testing.assert_array_equal(final[b], 0.0)
            np.testing.assert_array_equal(outputs[b], 0.0)
            continue
        row_outputs, row_final = jaxgru.rnn(CELL, PARAMS, x[b:b + 1, :length])
        np.testing.assert_allclose(final[b], row_final[0], **TOLERANCE)
        np.testing.assert_allclose(outputs[b, :length], row_outputs[0], **TOLERANCE)
        np.testing.assert_allclose(outputs[b, length:], np.broadcast_to(row_outputs[0, -1], (T - length, U)),
                                   **TOLERANCE)
    grads = jax.grad(lambda p: jnp.sum(ours(p)[1]))(PARAMS)
    expected = jax.grad(lambda p: sum(jnp.sum(jaxgru.rnn(CELL, p, x[b:b + 1, :n])[1])
                                      for b, n in enumerate(LENGTHS) if n))(PARAMS)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads, expected)


def test_seq_lengths_are_the_right_padding_mask_everywhere():
    x = inputs(len(LENGTHS))
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    for fn, params in ((jaxgru.rnn, PARAMS), (jaxgru.bidirectional, BI_PARAMS)):
        for time_major in (False, True):
            xs = jnp.swapaxes(x, 0, 1) if time_major else x
            m = mask.T if time_major else mask
            got = jax.jit(lambda xs, n: fn(CELL, params, xs, seq_lengths=n, time_major=time_major))(xs, LENGTHS)
            jax.tree.map(np.testing.assert_array_equal, got, fn(CELL, params, xs, mask=m, time_major=time_major))


@pytest.mark.parametrize("lengths,error,match", [
    (np.array([6, 2, 7, 4]), ValueError,
     r"seq_lengths: expected lengths in \[0, T\] = \[0, 6\], got values from 2 to 7"),
    (np.array([6, -1, 0, 4]), ValueError, r"seq_lengths: expected lengths in \[0, T\]"),
    (np.array([6.0, 2, 0, 4]), TypeError, "seq_lengths: expected integers .*float"),
    (np.array([6, 2, 0]), ValueError, r"seq_lengths: expected shape \(4,\)"),
    (np.array([[6, 2, 0, 4]]), ValueError, r"seq_lengths: expected shape \(4,\)"),
    ("6", TypeError, "seq_lengths: expected integers"),
])
def test_bad_seq_lengths(lengths, error, match):
    x = inputs(len(LENGTHS))
    with pytest.raises(error, match=match):
        jaxgru.rnn(CELL, PARAMS, x, seq_lengths=lengths)
    with pytest.raises(error, match=match):
        jaxgru.bidirectional(CELL, BI_PARAMS, x, seq_lengths=lengths)


def test_concrete_seq_lengths_closed_over_inside_jit_are_checked_not_traced():
    """Lengths known when tracing (a concrete array captured by the jitted function) are
    range-checked like lengths passed outside `jit`, not turned into a trace error."""
    x = inputs(len(LENGTHS))
    lengths = jnp.asarray(LENGTHS)
    got = jax.jit(lambda x: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=lengths))(x)
    jax.tree.map(np.testing.assert_array_equal, got, jaxgru.rnn(CELL, PARAMS, x, seq_lengths=LENGTHS))
    too_long = jnp.asarray([6, 2, 7, 4])
    with pytest.raises(ValueError, match=r"seq_lengths: expected lengths in \[0, T\] = \[0, 6\], got values from 2 to 7"):
        jax.jit(lambda x: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=too_long))(x)


def test_mask_and_seq_lengths_together_are_refused():
    x = inputs(len(LENGTHS))
    with pytest.raises(ValueError, match="mask, seq_lengths: pass one of them"):
        jaxgru.rnn(CELL, PARAMS, x, mask=np.ones((len(LENGTHS), T), bool), seq_lengths=LENGTHS)


# ---------------------------------------------------------------- batch axes
def _per_row_arguments(batch, time_major, seed=3):
    """A mask, resets, initial state and explicit dropout masks for batch axes ``batch``."""
    rng = np.random.default_rng(seed)
    mask = rng.random((*batch, T)) < 0.8
    resets = rng.random((*batch, T)) < 0.2
    if time_major:
        mask, resets = np.moveaxis(mask, -1, 0), np.moveaxis(resets, -1, 0)
    h0 = jax.random.normal(jax.random.key(seed), (*batch, U))
    masks = CELL.dropout_masks(jax.random.key(seed), int(np.prod(batch)), D)
    masks = jaxgru.DropoutMasks(*(m.reshape(3, *batch, m.shape[-1]) for m in masks))
    return dict(mask=mask, resets=resets, initial_state=h0, dropout_masks=masks, training=True)


@pytest.mark.parametrize("time_major", [False, True])
def test_many_batch_axes_equal_the_flattened_batch(time_major):
    batch = (2, 3)
    x = inputs(*batch)
    args = _per_row_arguments(batch, time_major)
    xs = jnp.moveaxis(x, -2, 0) if time_major else x
    outputs, final = jaxgru.rnn(CELL, PARAMS, xs, time_major=time_major, **args)

    flat = dict(args, initial_state=args["initial_state"].reshape(6, U),
                dropout_masks=jaxgru.DropoutMasks(*(m.reshape(3, 6, m.shape[-1]) for m in args["dropout_masks"])))
    if time_major:
        flat.update(mask=args["mask"].reshape(T, 6), resets=args["resets"].reshape(T, 6))
        flat_outputs, flat_final = jaxgru.rnn(CELL, PARAMS, xs.reshape(T, 6, D), time_major=True, **flat)
        np.testing.assert_array_equal(outputs, flat_outputs.reshape(T, *batch, U))
    else:
        flat.update(mask=args["mask"].reshape(6, T), resets=args["resets"].reshape(6, T))
        flat_outputs, flat_final = jaxgru.rnn(CELL, PARAMS, x.reshape(6, T, D), **flat)
        np.testing.assert_array_equal(outputs, flat_outputs.reshape(*batch, T, U))
    np.testing.assert_array_equal(final, flat_final.reshape(*batch, U))


def test_unbatched_inputs_equal_a_batch_of_one_and_vmap():
    x = inputs(5)
    lengths = np.array([6, 3, 1, 0, 5])
    resets = np.random.default_rng(4).random((5, T)) < 0.3
    h0 = jax.random.normal(jax.random.key(5), (5, U))
    batched = jaxgru.rnn(CELL, PARAMS, x, seq_lengths=lengths, resets=resets, initial_state=h0)
    unbatched = jax.vmap(lambda x, n, r, h: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=n, resets=r, initial_state=h))(
        x, lengths, resets, h0)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), unbatched, batched)
    one_outputs, one_final = jaxgru.rnn(CELL, PARAMS, x[0])
    assert one_outputs.shape == (T, U) and one_final.shape == (U,)
    np.testing.assert_array_equal(one_outputs, jaxgru.rnn(CELL, PARAMS, x[:1])[0][0])
    bi_outputs, (bi_fw, bi_bw) = jaxgru.bidirectional(CELL, BI_PARAMS, x[0], return_sequences=False)
    assert bi_outputs.shape == (2 * U,) and bi_fw.shape == bi_bw.shape == (U,)
    bi_one = jaxgru.bidirectional(CELL, BI_PARAMS, x[:1], return_sequences=False)[0]
    np.testing.assert_array_equal(bi_outputs, bi_one[0])


def test_bidirectional_with_batch_axes_equals_the_flattened_batch():
    x = inputs(2, 2)
    mask = np.random.default_rng(6).random((2, 2, T)) < 0.8
    outputs, (final_fw, final_bw) = jaxgru.bidirectional(CELL, BI_PARAMS, x, mask=mask)
    flat, (flat_fw, flat_bw) = jaxgru.bidirectional(CELL, BI_PARAMS, x.reshape(4, T, D), mask=mask.reshape(4, T))
    np.testing.assert_array_equal(outputs, flat.reshape(2, 2, T, 2 * U))
    np.testing.assert_array_equal(final_bw, flat_bw.reshape(2, 2, U))


def test_wrong_batch_axes_in_per_row_arguments():
    x = inputs(2, 3)
    with pytest.raises(ValueError, match=r"mask: expected shape \(\*batch, T\) = \(2, 3, 6\), got \(6, 6\)"):
        jaxgru.rnn(CELL, PARAMS, x, mask=np.ones((6, T), bool))
    with pytest.raises(ValueError, match=r"initial_state: expected shape \(2, 3, 4\), got \(6, 4\)"):
        jaxgru.rnn(CELL, PARAMS, x, initial_state=jnp.zeros((6, U)))
    with pytest.raises(ValueError, match=r"masks\.inputs: expected shape \(3, 2, 3, 3\)"):
        jaxgru.rnn(CELL, PARAMS, x, training=True, dropout_masks=CELL.dropout_masks(jax.random.key(0), 6, D))


# ---------------------------------------------------------------- empty batches
@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
def test_an_empty_batch_gives_empty_results(gradient):
    x = jnp.zeros((0, T, D))
    key = jax.random.key(0)
    per_row = dict(mask=np.zeros((0, T), bool), resets=np.zeros((0, T), bool), rng=key, training=True)
    outputs, final = jaxgru.rnn(CELL, PARAMS, x, gradient=gradient, **per_row)
    assert outputs.shape == (0, T, U) and final.shape == (0, U)
    last, _ = jaxgru.rnn(CELL, PARAMS, x, return_sequences=False, seq_lengths=np.zeros((0,), int))
    assert last.shape == (0, U)
    bi, (fw, bw) = jaxgru.bidirectional(CELL, BI_PARAMS, x, gradient=gradient, **per_row)
    assert bi.shape == (0, T, 2 * U) and fw.shape == bw.shape == (0, U)
    grads = jax.grad(lambda p: jnp.sum(jaxgru.rnn(CELL, p, x, gradient=gradient)[0]))(PARAMS)
    jax.tree.map(lambda g: np.testing.assert_array_equal(g, 0.0), grads)
    assert jaxgru.rnn(CELL, PARAMS, jnp.zeros((2, 0, T, D)))[0].shape == (2, 0, T, U)


def test_stacked_rnn_takes_any_batch_axes_and_empty_batches():
    cell = jaxgru.GRUCell(U)
    layers = [{"forward": cell.init(jax.random.key(k), D if k == 0 else 2 * U),
               "backward": cell.init(jax.random.key(10 + k), D if k == 0 else 2 * U)} for k in range(2)]
    x = inputs(2, 3)
    lengths = np.array([[6, 2, 0], [4, 6, 1]])
    outputs, finals = jaxgru.stacked_rnn(cell, layers, x, bidirectional=True, seq_lengths=lengths)
    flat, flat_finals = jaxgru.stacked_rnn(cell, layers, x.reshape(6, T, D), bidirectional=True,
                                           seq_lengths=lengths.reshape(6))
    np.testing.assert_array_equal(outputs, flat.reshape(2, 3, T, 2 * U))
    np.testing.assert_array_equal(finals, flat_finals.reshape(4, 2, 3, U))
    single, single_finals = jaxgru.stacked_rnn(cell, layers, x[0, 0], bidirectional=True)
    assert single.shape == (T, 2 * U) and single_finals.shape == (4, U)
    np.testing.assert_array_equal(single, jaxgru.stacked_rnn(cell, layers, x[0, :1], bidirectional=True)[0][0])
    empty, empty_finals = jaxgru.stacked_rnn(cell, layers, jnp.zeros((0, T, D)), bidirectional=True,
                                             dropout=0.5, rng=jax.random.key(0), training=True)
    assert empty.shape == (0, T, 2 * U) and empty_finals.shape == (4, 0, U)
