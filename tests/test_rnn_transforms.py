"""`jaxgru.rnn` / `jaxgru.bidirectional` under layouts, unroll, jit, vmap, checkpoint, remat,
and sequence dropout against a step-by-step `GRUCell.step` loop."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from helpers import assert_close, random_params

B, T, D, U = 3, 5, 4, 6
_rng = np.random.default_rng(0)
X = _rng.normal(size=(B, T, D)).astype(np.float32)
H0 = _rng.normal(size=(B, U)).astype(np.float32)
H0_BACKWARD = _rng.normal(size=(B, U)).astype(np.float32)
MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1], [0, 0, 0, 0, 0]], bool)
CELLS = [jaxgru.GRUCell(U), jaxgru.GRUCell(U, reset_after=False, implementation=1)]


# ---------------------------------------------------------------- layouts, unroll, time chunks, jit
@pytest.mark.parametrize("cell", CELLS, ids=["reset_after", "reset_before"])
def test_time_major_unroll_time_chunks_and_jit_equal_the_default(cell):
    params = random_params(cell, D)
    cases = list(itertools.product([None, MASK], [False, True], [False, True]))  # mask, go_backwards, return_sequences

    def run(params, x, mask, go_backwards, return_sequences, time_major=False, **options):
        if time_major:
            x = x.swapaxes(0, 1)
            mask = None if mask is None else mask.T
        outputs, state = jaxgru.rnn(cell, params, x, mask=mask, initial_state=H0, go_backwards=go_backwards,
                                    return_sequences=return_sequences, time_major=time_major,
                                    zero_output_for_mask=go_backwards, **options)
        if time_major and return_sequences:
            outputs = outputs.swapaxes(0, 1)
        return outputs, state

    variants = {"time_major": dict(time_major=True), "unroll=3": dict(unroll=3), "unroll=T": dict(unroll=T),
                "time_chunk=2": dict(time_chunk=2),  # T = 5: two chunks and a remainder
                "time_chunk=1": dict(time_chunk=1), "time_chunk=2,time_major": dict(time_chunk=2, time_major=True)}

    @jax.jit  # one program for every variant: one compile
    def run_all(params, x):
        return {variant: [run(params, x, *case, **options) for case in cases]
                for variant, options in [("default", {}), *variants.items()]}

    results = run_all(params, X)
    for variant in variants:
        assert_close(results[variant], results["default"])
    # without jit
    assert_close(run(params, X, MASK, True, True), results["default"][-1])  # the last case


def test_bidirectional_time_major_unroll_and_jit_equal_the_default():
    cell = CELLS[0]
    params = {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 2)}

    def run_all(params, x, time_major=False, unroll=1):
        mask = MASK.T if time_major else MASK
        return [jaxgru.bidirectional(cell, params, x, mask=mask, initial_state=(H0, H0_BACKWARD), merge_mode=None,
                                     return_sequences=return_sequences, time_major=time_major, unroll=unroll)
                for return_sequences in (True, False)]

    reference = jax.jit(run_all)(params, X)
    assert_close(run_all(params, X), reference)
    assert_close(jax.jit(functools.partial(run_all, unroll=2))(params, X), reference)
    (sequences, finals), (last, last_finals) = jax.jit(functools.partial(run_all, time_major=True))(
        params, X.swapaxes(0, 1))
    assert_close([(tuple(s.swapaxes(0, 1) for s in sequences), finals), (last, last_finals)], reference)
    # Keras's Bidirectional: masked steps output zeros when returning sequences
    (forward, backward), _ = reference[0]
    np.testing.assert_array_equal(np.asarray(forward)[~MASK], 0.0)
    np.testing.assert_array_equal(np.asarray(backward)[~MASK], 0.0)


def test_stateful_use_is_passing_the_final_state_back():
    cell = CELLS[0]
    params = random_params(cell, D)
    whole, final = jaxgru.rnn(cell, params, X, initial_state=H0)
    first, state = jaxgru.rnn(cell, params, X[:, :2], initial_state=H0)
    second, final_split = jaxgru.rnn(cell, params, X[:, 2:], initial_state=state)
    assert_close(jnp.concatenate([first, second], axis=1), whole)
    assert_close(final_split, final)


# ---------------------------------------------------------------------------- dropout
DROPOUT_CELLS = [
    jaxgru.GRUCell(U, dropout=0.4, reset_after=False),
    jaxgru.GRUCell(U, dropout=0.3, recurrent_dropout=0.5),
]


def step_loop(cell, params, x, h0, masks, mask, go_backwards, zero_output_for_mask):
    """`GRUCell.step` over time with one fixed mask set, Keras's masking written out."""
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    h, previous, outputs = jnp.asarray(h0), jnp.zeros((B, U)), []
    for t in order:
        output, h_new = cell.step(params, h, x[:, t], training=True, dropout_masks=masks)
        if mask is not None:
            keep = mask[:, t, None]
            output = jnp.where(keep, output, 0.0 if zero_output_for_mask else previous)
            h_new = jnp.where(keep, h_new, h)
        outputs.append(output)
        h, previous = h_new, output
    return jnp.stack(outputs, axis=1), h


@pytest.mark.parametrize("cell", DROPOUT_CELLS, ids=["input-implementation2", "input-and-recurrent-implementation1"])
def test_sequence_dropout_equals_step_loop_with_one_mask_set(cell):
    params = random_params(cell, D)
    key, other_key = jax.random.key(7), jax.random.key(8)
    cases = list(itertools.product([None, MASK], [False, True]))  # mask, go_backwards
    no_dropout = jaxgru.GRUCell(U, reset_after=cell.reset_after, implementation=cell.implementation)

    @jax.jit
    def run_all(params, key):
        masks = cell.dropout_masks(key, B, D)
        return dict(
            rnn=[jaxgru.rnn(cell, params, X, initial_state=H0, mask=mask, go_backwards=go_backwards,
                            zero_output_for_mask=go_backwards, rng=key, training=True)
                 for mask, go_backwards in cases],
            loop=[step_loop(cell, params, X, H0, masks, mask, go_backwards, go_backwards)
                  for mask, go_backwards in cases],
            explicit_masks=jaxgru.rnn(cell, params, X, initial_state=H0, training=True, dropout_masks=masks),
            eval_with_key=jaxgru.rnn(cell, params, X, initial_state=H0, rng=key, training=False),
            eval_without_key=jaxgru.rnn(cell, params, X, initial_state=H0, training=False),
            no_dropout=jaxgru.rnn(no_dropout, params, X, initial_state=H0),
        )

    results = run_all(params, key)
    assert_close(results["rnn"], results["loop"])
    # explicit dropout_masks= equal the masks drawn from the key
    assert_close(results["explicit_masks"], results["rnn"][0])
    # same key, same result; another key, another result
    assert_close(run_all(params, key)["rnn"], results["rnn"], atol=0)
    other = run_all(params, other_key)
    assert np.abs(np.asarray(other["rnn"][0][0]) - np.asarray(results["rnn"][0][0])).max() > 1e-3
    # training=False: dropout-free, whatever the key
    assert_close(other["eval_with_key"], results["no_dropout"], atol=0)
    assert_close(results["eval_with_key"], results["no_dropout"], atol=0)
    assert_close(results["eval_without_key"], results["no_dropout"], atol=0)


def test_bidirectional_dropout_uses_one_key_per_direction():
    cell = DROPOUT_CELLS[1]
    params = {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 2)}

    @jax.jit
    def run_all(params, key):
        key_fw, key_bw = jax.random.split(key)
        return (jaxgru.bidirectional(cell, params, X, merge_mode=None, rng=key, training=True),
                jaxgru.rnn(cell, params["forward"], X, rng=key_fw, training=True),
                jaxgru.rnn(cell, params["backward"], X, rng=key_bw, training=True, go_backwards=True))

    ((forward, backward), finals), expected_fw, expected_bw = run_all(params, jax.random.key(3))
    assert_close((forward, finals[0]), expected_fw)
    assert_close((backward[:, ::-1], finals[1]), expected_bw)


# ---------------------------------------------------------------------------- vmap, checkpoint, remat
def test_vmap_over_a_batch_of_sequences_equals_a_loop():
    cell = DROPOUT_CELLS[0]
    params = random_params(cell, D)
    n = 3
    xs = np.stack([X * (i + 1) for i in range(n)])
    masks = np.stack([MASK, ~MASK, np.ones_like(MASK)])
    states = np.stack([H0, -H0, H0_BACKWARD])
    keys = jax.random.split(jax.random.key(0), n)

    def run(x, mask, h0, key):
        return jaxgru.rnn(cell, params, x, mask=mask, initial_state=h0, rng=key, training=True)

    batched = jax.jit(jax.vmap(run))(xs, masks, states, keys)
    single = jax.jit(run)
    for i in range(n):
        assert_close(jax.tree.map(lambda a: a[i], batched), single(xs[i], masks[i], states[i], keys[i]))


def loss_fn(cell, remat=False, mask=MASK):
    def loss(params, x, h0):
        outputs, final = jaxgru.rnn(cell, params, x, initial_state=h0, mask=mask, remat=remat)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(final ** 2)
    return loss


@pytest.mark.parametrize("cell", CELLS, ids=["reset_after", "reset_before"])
def test_checkpoint_and_remat_give_the_same_outputs_and_gradients(cell):
    params = random_params(cell, D)

    @jax.jit
    def run_all(params):
        grads = {name: jax.grad(loss, argnums=(0, 1, 2))(params, X, H0)
                 for name, loss in [("plain", loss_fn(cell)), ("checkpoint", jax.checkpoint(loss_fn(cell))),
                                    ("remat", loss_fn(cell, remat=True))]}
        outputs = {remat: jaxgru.rnn(cell, params, X, initial_state=H0, mask=MASK, remat=remat)
                   for remat in (False, True)}
        return grads, outputs

    grads, outputs = run_all(params)
    assert_close(grads["checkpoint"], grads["plain"])
    assert_close(grads["remat"], grads["plain"])
    assert_close(outputs[True], outputs[False], atol=0)


def test_long_sequence_gradient_memory_is_bounded_under_remat():
    """T=10,000: with remat the backward keeps the (B, U) carry per step instead of every
    gate activation. The compiled gradient's scratch memory stays below 12 * T*B*U*4
    bytes: the (T, B, 3U) input projections and their cotangent (6), the output sequence,
    its cotangent and a layout copy (3), and the per-step carry (1)."""
    steps, batch, units = 10_000, 2, 8
    cell = jaxgru.GRUCell(units)
    params = cell.init(jax.random.key(0), D)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(batch, steps, D)).astype(np.float32))

    def loss(params, x):
        outputs, final = jaxgru.rnn(cell, params, x, remat=True)
        return jnp.mean(outputs ** 2) + jnp.mean(final)

    compiled = jax.jit(jax.grad(loss)).lower(params, x).compile()
    temp_bytes = compiled.memory_analysis().temp_size_in_bytes
    assert temp_bytes <= 12 * steps * batch * units * 4
    grads = compiled(params, x)
    assert all(bool(jnp.all(jnp.isfinite(g))) and bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads))
