"""Data-parallel scenarios on 8 CPU devices, each against the same function jitted on one
device without a mesh; `test_parallel.py` runs them and checks what they measured.

Every test process has eight CPU devices (conftest.py); each scenario returns its
measurements as a dict.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgru
from jaxgru import parallel

DEVICES = 8
B, T, D, U = 16, 6, 3, 8
CELL = jaxgru.GRUCell(U, dropout=0.25, recurrent_dropout=0.25)


def make_params(seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    bi = {"forward": CELL.init(keys[1], U), "backward": CELL.init(jax.random.fold_in(keys[1], 1), U)}
    return {"gru": CELL.init(keys[0], D), "bi": bi, "w": jax.random.normal(keys[2], (2 * U, 1)) * 0.3}


def make_batch(seed=1):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    return {"x": rng.normal(size=(B, T, D)).astype(np.float32),
            "mask": np.arange(T)[None, :] < lengths[:, None],
            "h0": rng.normal(size=(B, U)).astype(np.float32),
            "y": rng.normal(size=(B,)).astype(np.float32)}


def loss_fn(params, batch, key):
    """A GRU over masked sequences from given initial states, then a bidirectional GRU."""
    training = key is not None
    k1, k2 = jax.random.split(key) if training else (None, None)
    seq, state = jaxgru.rnn(CELL, params["gru"], batch["x"], mask=batch["mask"], initial_state=batch["h0"],
                            rng=k1, training=training)
    last, _ = jaxgru.bidirectional(CELL, params["bi"], seq, mask=batch["mask"], rng=k2, training=training,
                                   return_sequences=False)
    prediction = (last @ params["w"])[:, 0]
    return jnp.mean((prediction - batch["y"]) ** 2) + 0.1 * jnp.mean(state ** 2)


def max_relative(a, b):
    """max |a - b| / max |b| over every leaf of two pytrees."""
    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / np.max(np.abs(y))), a, b)
    return max(jax.tree.leaves(diffs))


def batch_sharded(array, mesh, batch_dim=0):
    return array.sharding.is_equivalent_to(parallel.batch_sharding(mesh, batch_dim=batch_dim), array.ndim)


def scenario_gradients():
    """Loss and gradients (with dropout, masks, initial states) and forward shardings."""
    mesh = parallel.data_mesh()
    params, batch, key = make_params(), make_batch(), jax.random.key(7)
    single = jax.jit(jax.value_and_grad(loss_fn))(params, batch, key)
    sharded_fn = jax.jit(jax.value_and_grad(loss_fn),
                         in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh), parallel.replicated(mesh)))
    sharded = sharded_fn(parallel.replicate(params, mesh), parallel.shard_batch(batch, mesh),
                         parallel.replicate(key, mesh))

    # Forward: outputs and final states come out batch-sharded without out_shardings.
    def forward(params, batch):
        return jaxgru.rnn(CELL, params["gru"], batch["x"], mask=batch["mask"], initial_state=batch["h0"],
                          time_major=batch["x"].shape[0] == T)

    time_major = {"x": np.swapaxes(batch["x"], 0, 1), "mask": batch["mask"].T, "h0": batch["h0"]}
    dims = {"x": 1, "mask": 1, "h0": 0}
    out, final = jax.jit(forward)(parallel.replicate(params, mesh), parallel.shard_batch(batch, mesh))
    out_tm, final_tm = jax.jit(forward)(parallel.replicate(params, mesh),
                                        parallel.shard_batch(time_major, mesh, batch_dim=dims))
    ref_out, ref_final = jax.jit(forward)(params, batch)

    # An Explicit-axis mesh (jax.make_mesh's default) with the default zero initial state.
    def plain(params, x):
        return jaxgru.rnn(CELL, params["gru"], x)

    explicit = jax.make_mesh((DEVICES,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    with jax.set_mesh(explicit):
        x_explicit = jax.device_put(batch["x"], jax.sharding.NamedSharding(explicit, jax.sharding.PartitionSpec("data")))
        explicit_out = jax.jit(plain)(params, x_explicit)
    return {
        "explicit_mesh_error": max_relative(explicit_out, jax.jit(plain)(params, batch["x"])),
        "devices": jax.device_count(),
        "loss_error": max_relative(sharded[0], single[0]),
        "grad_error": max_relative(sharded[1], single[1]),
        "grads_replicated": all(g.sharding.is_fully_replicated for g in jax.tree.leaves(sharded[1])),
        "forward_error": max_relative((out, final), (ref_out, ref_final)),
        "time_major_error": max_relative((np.swapaxes(out_tm, 0, 1), final_tm), (ref_out, ref_final)),
        "outputs_batch_sharded": batch_sharded(out, mesh) and batch_sharded(final, mesh),
        "time_major_outputs_batch_sharded": batch_sharded(out_tm, mesh, 1) and batch_sharded(final_tm, mesh),
    }


def scenario_train_step():
    """A few optimizer steps of `make_train_step` on 8 devices vs a plain 1-device loop."""
    optimizer, steps = optax.adam(0.05), 3
    params, batch, key = make_params(), make_batch(), jax.random.key(3)

    @jax.jit
    def reference_step(params, opt_state, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    ref_params, ref_state, ref_losses = params, optimizer.init(params), []
    for i in range(steps):
        ref_params, ref_state, loss = reference_step(ref_params, ref_state, jax.random.fold_in(key, i))
        ref_losses.append(float(loss))

    mesh = parallel.data_mesh()
    train_step = parallel.make_train_step(loss_fn, optimizer, mesh)
    state = parallel.TrainStep(parallel.replicate(params, mesh), parallel.replicate(optimizer.init(params), mesh), None)
    sharded_batch, losses = parallel.shard_batch(batch, mesh), []
    compiled = train_step.lower(state.params, state.opt_state, sharded_batch, key).compile()
    first = state
    for i in range(steps):
        state = train_step(state.params, state.opt_state, sharded_batch, jax.random.fold_in(key, i))
        losses.append(float(state.loss))
    try:  # the first call donated these; passing them again crashes XLA unless refused
        train_step(first.params, first.opt_state, sharded_batch, key)
        donated_error = None
    except ValueError as error:
        donated_error = str(error)
    batch_in = compiled.input_shardings[0][2]
    hlo = compiled.as_text()
    return {
        "devices": jax.device_count(),
        "losses": losses,
        "reference_losses": ref_losses,
        "donated_error": donated_error,
        "params_error": max_relative(state.params, ref_params),
        "opt_state_error": max_relative(state.opt_state, ref_state),
        "batch_input_specs": sorted({str(tuple(s.spec)) for s in jax.tree.leaves(batch_in)}),
        "params_replicated": all(p.sharding.is_fully_replicated for p in jax.tree.leaves(state.params)),
        "all_gathers": hlo.count("all-gather"),
        "all_reduces": hlo.count("all-reduce("),
    }


def scenario_dropout():
    """Masks drawn for a batch-sharded batch from one global key."""
    key = jax.random.key(11)

    def draw(mesh):
        masks = jax.jit(lambda k: CELL.dropout_masks(k, B, D), out_shardings=jaxgru.DropoutMasks(
            parallel.batch_sharding(mesh, batch_dim=1), parallel.batch_sharding(mesh, batch_dim=1)))(key)
        return masks

    mesh = parallel.data_mesh()
    masks, again = draw(mesh), draw(mesh)
    half = draw(parallel.data_mesh(jax.devices()[:4]))
    single = jax.jit(lambda k: CELL.dropout_masks(k, B, D))(key)
    shards = [np.asarray(s.data) for s in sorted(masks.inputs.addressable_shards, key=lambda s: s.index[1].start)]
    recurrent = [np.asarray(s.data) for s in masks.recurrent.addressable_shards]
    distinct = all(not np.array_equal(a, b) for i, a in enumerate(shards) for b in shards[i + 1:])
    distinct_rec = all(not np.array_equal(a, b) for i, a in enumerate(recurrent) for b in recurrent[i + 1:])
    try:
        parallel.shard_batch(np.zeros((12, D)), mesh)
        indivisible_error = ""
    except ValueError as error:
        indivisible_error = str(error)
    return {
        "indivisible_batch_error": indivisible_error,
        "shards": len(shards),
        "shard_shape": list(shards[0].shape),
        "shards_differ": distinct and distinct_rec,
        "reproducible": all(np.array_equal(a, b) for a, b in zip(masks, again)),
        "equal_on_4_devices": all(np.array_equal(a, b) for a, b in zip(masks, half)),
        "equal_on_1_device": all(np.array_equal(a, b) for a, b in zip(masks, single)),
        "zero_fraction": float(np.mean(np.asarray(masks.inputs) == 0)),
    }


def scenario_flax():
    """`jaxgru.linen.GRU` (dropout, mask, initial state) trained on 8 devices vs one device."""
    import flax.linen as nn

    from jaxgru.linen import GRU

    class Model(nn.Module):
        @nn.compact
        def __call__(self, batch, deterministic):
            seq = GRU(U, return_sequences=True, dropout=0.25, recurrent_dropout=0.25)(
                batch["x"], mask=batch["mask"], initial_state=batch["h0"], deterministic=deterministic)
            return nn.Dense(1)(seq[:, -1])[:, 0]

    model, batch, key = Model(), make_batch(), jax.random.key(5)
    variables = model.init(jax.random.key(0), batch, True)

    def flax_loss(params, batch, key):
        prediction = model.apply({"params": params}, batch, False, rngs={"dropout": key})
        return jnp.mean((prediction - batch["y"]) ** 2)

    optimizer, steps = optax.sgd(0.1), 2

    @jax.jit
    def reference_step(params, opt_state, key):
        loss, grads = jax.value_and_grad(flax_loss)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    mesh = parallel.data_mesh()
    train_step = parallel.make_train_step(flax_loss, optimizer, mesh)
    ref_params, ref_state = variables["params"], optimizer.init(variables["params"])
    params, opt_state = parallel.replicate(ref_params, mesh), parallel.replicate(ref_state, mesh)
    sharded_batch, losses, ref_losses = parallel.shard_batch(batch, mesh), [], []
    for i in range(steps):
        ref_params, ref_state, loss = reference_step(ref_params, ref_state, jax.random.fold_in(key, i))
        params, opt_state, sharded_loss = train_step(params, opt_state, sharded_batch, jax.random.fold_in(key, i))
        ref_losses.append(float(loss))
        losses.append(float(sharded_loss))
    return {"devices": jax.device_count(), "losses": losses, "reference_losses": ref_losses,
            "params_error": max_relative(params, ref_params)}


SCENARIOS = {"gradients": scenario_gradients, "train_step": scenario_train_step, "dropout": scenario_dropout,
             "flax": scenario_flax}
