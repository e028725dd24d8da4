"""`resets=`: episode boundaries inside one call, against a hand-written `lax.scan` over
`cell.step` with `jnp.where` resets (the pattern RL code writes by hand) and against
segments run one by one. Resets restart from zeros unless ``reset_state`` says otherwise;
the first segment starts from ``initial_state`` (the state carried from a previous
rollout)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params
from jax import lax

import jaxgru

B, T, D, U = 3, 7, 4, 5
RESETS = np.array([[0, 0, 1, 0, 0, 0, 1],
                   [1, 0, 0, 0, 1, 1, 0],
                   [0, 0, 0, 0, 0, 0, 0]], bool)
MASK = np.array([[1, 1, 1, 0, 1, 1, 1],
                 [1, 1, 0, 1, 1, 0, 1],
                 [0, 1, 1, 1, 1, 1, 0]], bool)
TOLERANCE = dict(rtol=2e-5, atol=2e-6)


def problem(cell, seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    params = random_params(cell, D, seed, scale=0.3)
    x = jax.random.normal(keys[2], (B, T, D))
    h0 = 0.5 * jax.random.normal(jax.random.fold_in(keys[2], 1), (B, U))
    return params, x, h0


def scanned_reference(cell, params, x, h0, mask, resets, dropout, zero_output_for_mask=False, reset_state=None):
    """The ScannedRNN pattern: ``h = where(reset, reset_state, h)`` (zeros by default)
    before every `cell.step`, Keras's mask rule after it; a reset also zeroes the output
    masked steps repeat."""
    mask = np.ones((B, T), bool) if mask is None else mask
    reset_state = jnp.zeros_like(h0) if reset_state is None else reset_state

    def body(carry, inputs):
        h, previous = carry
        x_t, keep, reset = inputs
        h = jnp.where(reset[:, None], reset_state, h)
        previous = jnp.where(reset[:, None], 0.0, previous)
        h_new, _ = cell.step(params, h, x_t, training=dropout is not None, dropout_masks=dropout)
        output = jnp.where(keep[:, None], h_new, 0.0 if zero_output_for_mask else previous)
        return (jnp.where(keep[:, None], h_new, h), output), output

    (h_last, _), outputs = lax.scan(body, (h0, jnp.zeros_like(h0)),
                                    (jnp.swapaxes(x, 0, 1), jnp.asarray(mask).T, jnp.asarray(resets).T))
    return jnp.swapaxes(outputs, 0, 1), h_last


def loss_of(outputs, final):
    weights = jnp.linspace(-1.0, 1.5, U)
    return jnp.sum(jnp.sin(outputs) * weights) + jnp.sum(final ** 2)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("masked,dropout,time_chunk", [(False, False, None), (True, False, None),
                                                       (True, True, 2), (False, True, 3), (True, True, 1)])
def test_resets_match_the_scanned_rnn_pattern(reset_after, masked, dropout, time_chunk):
    """Outputs, final state and gradients, both backward passes; the reference and both
    are one jitted program (one compile)."""
    cell = jaxgru.GRUCell(U, reset_after=reset_after, dropout=0.3 if dropout else 0.0,
                          recurrent_dropout=0.2 if dropout else 0.0)
    params, x, h0 = problem(cell)
    mask = MASK if masked else None
    key = jax.random.key(7)
    masks = cell.dropout_masks(key, B, D) if dropout else None

    def ours(params, x, h0, gradient):
        return jaxgru.rnn(cell, params, x, initial_state=h0, mask=mask, resets=RESETS, rng=key, training=dropout,
                          gradient=gradient, time_chunk=time_chunk)

    def reference(params, x, h0):
        return scanned_reference(cell, params, x, h0, mask, RESETS, masks)

    def outputs_and_grads(fn, *args):
        return fn(*args), jax.grad(lambda *args: loss_of(*fn(*args)), argnums=(0, 1, 2))(*args)

    @jax.jit
    def all_results(*args):
        return [outputs_and_grads(reference, *args),
                *(outputs_and_grads(functools.partial(ours, gradient=gradient), *args)
                  for gradient in ("fused", "autodiff"))]

    expected, *got = all_results(params, x, h0)
    for gradient, result in zip(("fused", "autodiff"), got, strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE, err_msg=f"gradient={gradient}"),
                     result, expected)


def segments_reference(cell, params, x, h0, mask, resets, go_backwards, zero_output_for_mask):
    """Each episode run on its own with `jaxgru.rnn` (no resets): a reset cuts the row into
    independent sequences, each read backwards with ``go_backwards``; the first one
    processed starts from ``h0`` (unless a reset at step 0 restarts it), the others from
    zeros. Returns outputs in processing
    order and the final state, per row."""
    outputs, finals = [], []
    for b in range(B):
        starts = sorted({0, *np.flatnonzero(resets[b])})
        bounds = list(zip(starts, [*starts[1:], T]))
        row_outputs, state = [], h0[b]
        for k, (start, stop) in enumerate(bounds[::-1] if go_backwards else bounds):
            carried = k == 0 and (go_backwards or not resets[b, 0])
            start_state = h0[b:b + 1] if carried else jnp.zeros_like(h0[b:b + 1])
            out, state = jaxgru.rnn(cell, params, x[b:b + 1, start:stop], initial_state=start_state,
                                    mask=None if mask is None else mask[b:b + 1, start:stop],
                                    go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                                    gradient="autodiff")
            row_outputs.append(out[0])
            state = state[0]
        outputs.append(jnp.concatenate(row_outputs))
        finals.append(state)
    return jnp.stack(outputs), jnp.stack(finals)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_go_backwards_reads_each_segment_backwards(reset_after, masked):
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    params, x, h0 = problem(cell, seed=1)
    mask = MASK if masked else None

    def reference(params, x, h0):
        return loss_of(*segments_reference(cell, params, x, h0, mask, RESETS, True, masked))

    def ours(params, x, h0, gradient):
        return loss_of(*jaxgru.rnn(cell, params, x, initial_state=h0, mask=mask, resets=RESETS,
                                   go_backwards=True, zero_output_for_mask=masked, gradient=gradient))

    @jax.jit  # the reference and both backward passes: one program, one compile
    def all_results(*args):
        return [jax.value_and_grad(fn, argnums=(0, 1, 2))(*args) for fn in (
            reference, functools.partial(ours, gradient="fused"), functools.partial(ours, gradient="autodiff"))]

    (expected_loss, expected), *got = all_results(params, x, h0)
    for gradient, (loss, grads) in zip(("fused", "autodiff"), got, strict=True):
        np.testing.assert_allclose(loss, expected_loss, **TOLERANCE, err_msg=f"gradient={gradient}")
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE, err_msg=f"gradient={gradient}"),
                     grads, expected)


def test_bidirectional_resets_each_direction_per_segment():
    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=2)
    params = {"forward": params, "backward": jax.tree.map(lambda w: -w, params)}

    @jax.jit  # the layer and every segment's call: one program
    def both(params, x, h0):
        h0_bw = -h0
        return (jaxgru.bidirectional(cell, params, x, resets=RESETS, mask=MASK, initial_state=(h0, h0_bw)),
                segments_reference(cell, params["forward"], x, h0, MASK, RESETS, False, True),
                segments_reference(cell, params["backward"], x, h0_bw, MASK, RESETS, True, True))

    (outputs, (final_fw, final_bw)), (out_fw, expected_fw), (out_bw, expected_bw) = both(params, x, h0)
    # backward outputs come in processing order per segment; the layer puts them back in input order
    out_bw = jnp.flip(out_bw, axis=1)
    np.testing.assert_allclose(outputs, jnp.concatenate([out_fw, out_bw], axis=-1), **TOLERANCE)
    np.testing.assert_allclose(final_fw, expected_fw, **TOLERANCE)
    np.testing.assert_allclose(final_bw, expected_bw, **TOLERANCE)


@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
def test_a_reset_at_every_step_is_independent_one_step_sequences(gradient):
    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=3)
    everywhere = np.ones((B, T), bool)

    @jax.jit  # every call and its reference: one program
    def results(params, x, h0):
        outputs, final = jaxgru.rnn(cell, params, x, initial_state=h0, resets=everywhere, gradient=gradient)
        from_zeros = jax.vmap(lambda x_t: cell.step(params, jnp.zeros_like(h0), x_t)[0], in_axes=1, out_axes=1)(x)
        # reset_state=h0: every step starts from h0, and its gradient sums over the T segments
        from_h0 = jaxgru.rnn(cell, params, x, initial_state=h0, resets=everywhere, reset_state=h0,
                             gradient=gradient)[0]
        expected_from_h0 = jax.vmap(lambda x_t: cell.step(params, h0, x_t)[0], in_axes=1, out_axes=1)(x)
        grad_h0 = jax.grad(lambda h: jnp.sum(jaxgru.rnn(cell, params, x, initial_state=h, resets=everywhere,
                                                         reset_state=h, gradient=gradient)[0]))(h0)
        expected = jax.grad(lambda h: jnp.sum(jax.vmap(lambda x_t: cell.step(params, h, x_t)[0], in_axes=1)(x)))(h0)
        return outputs, final, from_zeros, from_h0, expected_from_h0, grad_h0, expected

    outputs, final, from_zeros, from_h0, expected_from_h0, grad_h0, expected = results(params, x, h0)
    np.testing.assert_allclose(outputs, from_zeros, **TOLERANCE)  # the default target: zeros, not h0
    np.testing.assert_allclose(final, from_zeros[:, -1], **TOLERANCE)
    np.testing.assert_allclose(from_h0, expected_from_h0, **TOLERANCE)
    np.testing.assert_allclose(grad_h0, expected, **TOLERANCE)


@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
@pytest.mark.parametrize("masked", [False, True])
def test_no_reset_is_bit_for_bit_the_call_without_resets(gradient, masked):
    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=4)
    mask = MASK if masked else None

    def run(resets):  # each call one jitted program of its own
        fn = functools.partial(jaxgru.rnn, cell, mask=mask, resets=resets, gradient=gradient)
        return jax.jit(lambda p, x, h: (fn(p, x, initial_state=h), jax.grad(
            lambda p, x, h: loss_of(*fn(p, x, initial_state=h)), argnums=(0, 1, 2))(p, x, h)))(params, x, h0)

    without, with_false = run(None), run(np.zeros((B, T), bool))
    jax.tree.map(np.testing.assert_array_equal, with_false, without)


@pytest.mark.parametrize("resets,error,match", [
    (np.zeros((B, T + 1), bool), ValueError, r"resets: expected shape \(\*batch, T\) = \(3, 7\)"),
    (np.zeros((T, B), bool), ValueError, r"resets: expected shape"),
    (np.zeros((B, T), np.float32), TypeError, r"resets: expected booleans .*float32; for float done flags pass "
                                              r"done\.astype\(bool\)"),
    ("episode", TypeError, "resets: expected booleans"),
])
def test_bad_resets(resets, error, match):
    cell = jaxgru.GRUCell(U)
    params, x, _ = problem(cell)
    with pytest.raises(error, match=match):
        jaxgru.rnn(cell, params, x, resets=resets)
    with pytest.raises(error, match=match):
        jaxgru.bidirectional(cell, {"forward": params, "backward": params}, x, resets=resets)


def test_flax_layers_take_resets_and_seq_lengths_per_call():
    from flax import nnx

    from jaxgru import linen as jf
    from jaxgru import nnx as jn

    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=5)
    lengths = np.array([7, 4, 0])
    calls = dict(resets=RESETS, seq_lengths=lengths)
    expected = jaxgru.rnn(cell, params, x, initial_state=h0, return_sequences=False, **calls)

    linen = jf.GRU(U, return_state=True)
    got = linen.apply({"params": params}, x, initial_state=h0, **calls)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), got, expected)
    target = jnp.full_like(h0, 0.3)
    got = linen.apply({"params": params}, x, initial_state=h0, reset_state=target, **calls)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), got, jaxgru.rnn(
        cell, params, x, initial_state=h0, reset_state=target, return_sequences=False, **calls))

    module = jn.GRU(D, U, return_state=True, rngs=nnx.Rngs(0))
    nnx.update(module, nnx.State({name: nnx.Param(w) for name, w in params.items()}))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE),
                 module(x, initial_state=h0, **calls), expected)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE),
                 module(x, initial_state=h0, reset_state=target, **calls), got)

    pair = {"forward": params, "backward": jax.tree.map(lambda w: -w, params)}
    expected_bi = jaxgru.bidirectional(cell, pair, x, **calls)[0]
    bi = jf.Bidirectional(jf.GRU(U, return_sequences=True))
    np.testing.assert_allclose(bi.apply({"params": pair}, x, **calls), expected_bi, **TOLERANCE)
    nnx_bi = jn.Bidirectional(jn.GRU(D, U, return_sequences=True, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
    np.testing.assert_allclose(nnx_bi(x, **calls), jaxgru.bidirectional(cell, nnx_bi.weights(), x, **calls)[0],
                               **TOLERANCE)


@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
@pytest.mark.parametrize("time_chunk", [None, 1])
def test_a_rollout_continues_its_carried_state_while_episodes_restart_from_zeros(gradient, time_chunk):
    """``reset_state``: the first segment starts from ``initial_state`` (the previous
    rollout's state), every reset from ``reset_state``; both get their own gradients."""
    cell = jaxgru.GRUCell(U)
    params, x, h_carried = problem(cell, seed=6)
    zeros = jnp.zeros_like(h_carried) + 0.1

    def ours(params, x, h, z):
        return loss_of(*jaxgru.rnn(cell, params, x, initial_state=h, resets=RESETS, reset_state=z, mask=MASK,
                                   gradient=gradient, time_chunk=time_chunk))

    def reference(params, x, h, z):
        return loss_of(*scanned_reference(cell, params, x, h, MASK, RESETS, None, reset_state=z))

    both = jax.jit(lambda *args: [jax.value_and_grad(fn, argnums=(0, 1, 2, 3))(*args) for fn in (reference, ours)])
    (expected_loss, expected), (loss, got) = both(params, x, h_carried, zeros)
    np.testing.assert_allclose(loss, expected_loss, **TOLERANCE)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), got, expected)
    with pytest.raises(ValueError, match="reset_state: given without resets"):
        jaxgru.rnn(cell, params, x, reset_state=zeros)
    with pytest.raises(ValueError, match=r"reset_state: expected a shape that broadcasts to \(\*batch, U\) = "
                                         r"\(3, 5\) .*got \(2, 5\)"):
        jaxgru.rnn(cell, params, x, resets=RESETS, reset_state=zeros[:2])


@pytest.mark.parametrize("shape", [(), (U,), (B, 1)])
def test_reset_state_broadcasts_and_its_gradient_sums_over_rows(shape):
    """``reset_state`` of any shape that broadcasts to ``(B, U)``: the result and every
    gradient (the broadcast target's summed over the rows and segments that use it) equal
    the hand-written loop given the target broadcast by `jnp.broadcast_to`."""
    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=7)
    target = 0.3 * jax.random.normal(jax.random.key(8), shape)

    def ours(params, x, h, z):
        return loss_of(*jaxgru.rnn(cell, params, x, initial_state=h, resets=RESETS, reset_state=z, mask=MASK))

    def reference(params, x, h, z):
        z = jnp.broadcast_to(z, (B, U))
        return loss_of(*scanned_reference(cell, params, x, h, MASK, RESETS, None, reset_state=z))

    both = jax.jit(lambda *args: [jax.value_and_grad(fn, argnums=(0, 1, 2, 3))(*args) for fn in (reference, ours)])
    (expected_loss, expected), (loss, got) = both(params, x, h0, target)
    np.testing.assert_allclose(loss, expected_loss, **TOLERANCE)
    assert got[3].shape == shape
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), got, expected)


def test_bidirectional_and_stacked_reset_states():
    """One ``reset_state`` for both directions or a (forward, backward) pair; for stacks one
    value for every layer or one entry per layer: each direction and layer equals its own
    `jaxgru.rnn` call."""
    cell = jaxgru.GRUCell(U)
    params, x, h0 = problem(cell, seed=9)
    back = jax.tree.map(lambda w: -w, params)
    pair = {"forward": params, "backward": back}
    fw_target, bw_target = jnp.full((U,), 0.4), jnp.float32(-0.2)
    layers = [params, random_params(cell, U, 10, scale=0.3)]
    bi_layers = [pair, {"forward": random_params(cell, 2 * U, 11, scale=0.3),
                        "backward": random_params(cell, 2 * U, 12, scale=0.3)}]

    def directions(fw, bw):
        out_fw = jaxgru.rnn(cell, params, x, resets=RESETS, reset_state=fw)[0]
        out_bw = jaxgru.rnn(cell, back, x, resets=RESETS, reset_state=bw, go_backwards=True)[0]
        return jnp.concatenate([out_fw, jnp.flip(out_bw, axis=1)], axis=-1)

    @jax.jit  # every call and its expected value: one program
    def results(x, h0):
        pairs = []
        for reset_state, (fw, bw) in (((fw_target, bw_target), (fw_target, bw_target)),
                                      (fw_target, (fw_target,) * 2), (None, (None, None))):
            got = jaxgru.bidirectional(cell, pair, x, resets=RESETS, reset_state=reset_state)[0]
            pairs.append((got, directions(fw, bw)))
        for reset_state, per_layer in ((None, (None, None)), (fw_target, (fw_target, fw_target)),
                                       ([None, h0], (None, h0))):
            got, finals = jaxgru.stacked_rnn(cell, layers, x, resets=RESETS, reset_state=reset_state,
                                             initial_state=jnp.stack([h0, -h0]))
            y0, f0 = jaxgru.rnn(cell, layers[0], x, resets=RESETS, reset_state=per_layer[0], initial_state=h0)
            y1, f1 = jaxgru.rnn(cell, layers[1], y0, resets=RESETS, reset_state=per_layer[1], initial_state=-h0)
            pairs += [(got, y1), (finals, jnp.stack([f0, f1]))]
        got = jaxgru.stacked_rnn(cell, bi_layers, x, bidirectional=True, resets=RESETS,
                                 reset_state=[(fw_target, bw_target), None])[0]
        y0 = jaxgru.bidirectional(cell, bi_layers[0], x, resets=RESETS, reset_state=(fw_target, bw_target))[0]
        return [*pairs, (got, jaxgru.bidirectional(cell, bi_layers[1], y0, resets=RESETS)[0])]

    for got, expected in results(x, h0):
        np.testing.assert_allclose(got, expected, **TOLERANCE)
    with pytest.raises(ValueError, match=r"reset_state: expected one state for both directions or a \(forward, "):
        jaxgru.bidirectional(cell, pair, x, resets=RESETS, reset_state=[fw_target] * 3)
    with pytest.raises(ValueError, match=r"reset_state: expected one array for every layer or a sequence of one "
                                         r"entry per layer \(2\), got a sequence of 3"):
        jaxgru.stacked_rnn(cell, layers, x, resets=RESETS, reset_state=[None] * 3)
    with pytest.raises(ValueError, match="reset_state: given without resets"):
        jaxgru.stacked_rnn(cell, layers, x, reset_state=fw_target)
