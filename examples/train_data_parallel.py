"""Data-parallel training of a Keras-style GRU on 8 devices with `jaxgru.parallel`.

The task is the adding problem: ``T`` steps of two features (a value in U[0, 1] and a
marker set at two steps); the target is the sum of the two marked values. Predicting the
mean scores MSE 1/6 ≈ 0.167; a GRU that remembers the marked values goes far below.

Run on 8 devices (on a CPU, XLA splits the host into 8 devices)::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/train_data_parallel.py

On GPUs or TPUs drop ``XLA_FLAGS``: the mesh spans every device. On several hosts run the
same command in every process with ``--distributed``, which calls
``jax.distributed.initialize()`` (the coordinator address, process count and process id
come from the cluster environment, or pass them to that call); each process then loads
only its own part of each global batch.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgru
from jaxgru import parallel


def adding_problem(rng: np.random.Generator, batch: int, steps: int) -> dict:
    """``x (batch, steps, 2)`` float32 and ``y (batch,)``: the sum of the two marked values."""
    values = rng.uniform(size=(batch, steps)).astype(np.float32)
    first = rng.integers(0, steps // 2, size=batch)
    second = rng.integers(steps // 2, steps, size=batch)
    markers = np.zeros((batch, steps), np.float32)
    markers[np.arange(batch), first] = 1.0
    markers[np.arange(batch), second] = 1.0
    return {"x": np.stack([values, markers], axis=-1), "y": values.sum(axis=1, where=markers > 0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps")
    parser.add_argument("--global-batch", type=int, default=64, help="examples per step, over all devices")
    parser.add_argument("--seq-len", type=int, default=30)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() first")
    args = parser.parse_args()
    if args.distributed:
        jax.distributed.initialize()

    mesh = parallel.data_mesh()
    local_batch = args.global_batch // jax.process_count()
    print(f"{jax.device_count()} devices ({jax.process_count()} processes), mesh {dict(mesh.shape)}, "
          f"global batch {args.global_batch}")

    cell = jaxgru.GRUCell(args.units, dropout=0.1)
    key = jax.random.key(0)  # the same key in every process: identical replicated params
    init_key, head_key, dropout_key = jax.random.split(key, 3)
    params = {"gru": cell.init(init_key, 2), "head": jax.random.normal(head_key, (args.units,)) * 0.1}

    def loss_fn(params, batch, key):
        # Written as for one device: a mean over the global batch; `key` is the step's
        # global dropout key, from which rnn draws one mask row per example.
        _, state = jaxgru.rnn(cell, params["gru"], batch["x"], rng=key, training=key is not None)
        return jnp.mean((state @ params["head"] - batch["y"]) ** 2)

    optimizer = optax.adam(1e-2)
    train_step = parallel.make_train_step(loss_fn, optimizer, mesh)
    params, opt_state = parallel.replicate(params, mesh), parallel.replicate(optimizer.init(params), mesh)
    evaluate = jax.jit(loss_fn, in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh), None))

    rng = np.random.default_rng(1 + jax.process_index())  # each process loads different examples
    test = parallel.shard_batch(adding_problem(np.random.default_rng(10_000 + jax.process_index()),
                                               local_batch * 4, args.seq_len), mesh)
    for step in range(args.steps):
        batch = parallel.shard_batch(adding_problem(rng, local_batch, args.seq_len), mesh)
        params, opt_state, loss = train_step(params, opt_state, batch, jax.random.fold_in(dropout_key, step))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  train MSE {float(loss):.4f}  test MSE {float(evaluate(params, test, None)):.4f}"
                  f"  (baseline 0.167)")
    print("batch sharding:", batch["x"].sharding.spec, " params sharding:", params["head"].sharding.spec)


if __name__ == "__main__":
    main()
