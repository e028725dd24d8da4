"""One process of a multi-process data-parallel run, launched by `test_multiprocess.py`.

``python tests/multiprocess_worker.py --out DIR --devices K [--coordinator HOST:PORT
--num-processes N --process-id I] [--train] [--save CKPT] [--restore CKPT] [--linger SECONDS]``
sets ``XLA_FLAGS=--xla_force_host_platform_device_count=K`` and JAX's gloo CPU
collectives before jax is imported, joins the other processes with
`jax.distributed.initialize` (loopback only), builds the mesh over all ``N * K`` devices
and runs, in order:

* ``--train``: ``STEPS`` `make_train_step` steps of Adam from the initial params, each
  process loading only its own rows of the global batch (`shard_batch`); the first
  moment after the first step is ``(1 - b1)`` times the gradient at the initial params
  (one compiled program gives losses, gradients and params); ``--save`` writes params
  and optimizer state after ``SAVE_AT`` steps with orbax.
* ``--restore CKPT``: params and optimizer state saved by a run on another number of
  processes (waiting for it to appear: the two runs go side by side), restored with the
  shardings of this mesh, and trained from step ``SAVE_AT`` to ``STEPS``.
* ``--linger SECONDS``: prints ``lingering`` and keeps training until it is killed or a
  peer's death stops it (the fault check); exits 3 if neither happens within SECONDS.

Each process writes what it measured to ``DIR/process{I}.json``: losses, gradients and
params as ``{pytree path: nested list}`` (float32 values, exact in JSON).
"""

import argparse
import json
import os
import sys
import time

STEPS, SAVE_AT = 5, 3
RESTORE_WAIT_S = 120
B, T, D, U = 8, 5, 3, 4  # global batch 8: 2 rows per device of 4
DATA_SEED = 17


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--devices", type=int, required=True, help="CPU devices of this process")
    parser.add_argument("--coordinator", help="HOST:PORT of process 0 (loopback in the tests)")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--heartbeat-timeout", type=int, default=100, help="seconds, jax.distributed's")
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--save")
    parser.add_argument("--restore")
    parser.add_argument("--linger", type=float, default=0, help="seconds to train on after the rest")
    return parser.parse_args()


STARTED = time.monotonic()
ARGS = parse_args()
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + f" --xla_force_host_platform_device_count={ARGS.devices}").strip()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
if ARGS.num_processes > 1:
    jax.distributed.initialize(coordinator_address=ARGS.coordinator, num_processes=ARGS.num_processes,
                               process_id=ARGS.process_id, coordinator_bind_address=ARGS.coordinator,
                               initialization_timeout=60, heartbeat_timeout_seconds=ARGS.heartbeat_timeout,
                               shutdown_timeout_seconds=10)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxgru  # noqa: E402
from jaxgru import parallel  # noqa: E402

# Input dropout only: recurrent dropout doubles the step's compile time (Keras's
# implementation 1), and its per-shard masks are checked on 8 devices in test_parallel.
CELL = jaxgru.GRUCell(U, dropout=0.25)
OPTIMIZER = optax.adam(0.05)
KEY = jax.random.key(3)


def load_rows(start: int, stop: int) -> dict:
    """Rows ``start:stop`` of the global batch, each made from its own seed, so a process
    builds only its own rows: inputs, masks (right padding), resets inside sequences,
    initial states and labels."""
    rows = []
    for row in range(start, stop):
        rng = np.random.default_rng([DATA_SEED, row])
        length = rng.integers(2, T + 1)
        rows.append({"x": rng.normal(size=(T, D)).astype(np.float32),
                     "mask": np.arange(T) < length,
                     "resets": rng.random(T) < 0.3,
                     "h0": rng.normal(size=(U,)).astype(np.float32),
                     "y": rng.normal(size=()).astype(np.float32)})
    return jax.tree.map(lambda *leaves: np.stack(leaves), *rows)


def loss_fn(params, batch, key):
    """A masked GRU with resets and dropout from given initial states, then a linear head."""
    seq, state = jaxgru.rnn(CELL, params["gru"], batch["x"], mask=batch["mask"], resets=batch["resets"],
                            initial_state=batch["h0"], rng=key, training=key is not None)
    return jnp.mean((state @ params["head"] - batch["y"]) ** 2) + 0.1 * jnp.mean(seq ** 2)


@jax.jit
def initial_params():
    keys = jax.random.split(jax.random.key(0), 2)
    return {"gru": CELL.init(keys[0], D), "head": jax.random.normal(keys[1], (U,)) * 0.5}


def as_lists(tree) -> dict:
    """``{path: nested list}`` for every leaf of ``tree``."""
    return {jax.tree_util.keystr(path): np.asarray(leaf).tolist()
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def main():
    mesh = parallel.data_mesh()
    rows = B // jax.process_count()
    mine = load_rows(jax.process_index() * rows, (jax.process_index() + 1) * rows)
    batch = parallel.shard_batch(mine, mesh)
    copies = parallel.replicated(mesh)
    train_step = parallel.make_train_step(loss_fn, OPTIMIZER, mesh)
    seconds = {"initialized": time.monotonic() - STARTED}
    result = {"seconds": seconds, "process_count": jax.process_count(), "device_count": jax.device_count(),
              "local_rows": rows, "batch_sharded": batch["x"].sharding.spec == jax.sharding.PartitionSpec("data")}

    def train(params, opt_state, steps):
        losses = []
        for step in steps:
            params, opt_state, loss = train_step(params, opt_state, batch, jax.random.fold_in(KEY, step))
            losses.append(float(loss))
        return params, opt_state, losses

    if ARGS.train:
        params = parallel.replicate(initial_params(), mesh)
        params, opt_state, first = train(params, parallel.replicate(OPTIMIZER.init(params), mesh), range(1))
        seconds["first_step"] = time.monotonic() - STARTED
        # Adam's first moment after one step is (1 - b1) * the gradient at the initial params.
        result["first_moment"] = as_lists(opt_state[0].mu)
        params, opt_state, more = train(params, opt_state, range(1, SAVE_AT))
        result["saved"] = as_lists({"params": params, "opt_state": opt_state})
        if ARGS.save:
            save(ARGS.save, {"params": params, "opt_state": opt_state})
        params, opt_state, rest = train(params, opt_state, range(SAVE_AT, STEPS))
        result.update(losses=first + more + rest, params=as_lists(params))
        seconds["trained"] = time.monotonic() - STARTED

    if ARGS.restore:
        restored = restore(ARGS.restore, mesh)
        result["restored"] = as_lists(restored)
        result["restored_replicated_on_mesh"] = all(
            leaf.sharding.is_equivalent_to(copies, leaf.ndim) for leaf in jax.tree.leaves(restored))
        params, opt_state, losses = train(restored["params"], restored["opt_state"], range(SAVE_AT, STEPS))
        result.update(resumed_losses=losses, resumed_params=as_lists(params))
        seconds["resumed"] = time.monotonic() - STARTED
    seconds["cpu"] = time.process_time()

    with open(os.path.join(ARGS.out, f"process{jax.process_index()}.json"), "w") as f:
        json.dump(result, f)

    if ARGS.linger:
        params = parallel.replicate(initial_params(), mesh)
        opt_state = parallel.replicate(OPTIMIZER.init(params), mesh)
        print("lingering", flush=True)
        deadline = time.monotonic() + ARGS.linger
        step = 0
        while time.monotonic() < deadline:
            params, opt_state, loss = train_step(params, opt_state, batch, jax.random.fold_in(KEY, step))
            loss.block_until_ready()
            step += 1
            time.sleep(0.1)  # leaves the CPUs to the other runs; a dead peer blocks the next step
        sys.exit(3)


def save(path, tree):
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree)
        checkpointer.wait_until_finished()


def restore(path, mesh):
    """Params and optimizer state from ``path``, restored replicated over ``mesh`` (the
    target's shapes, dtypes and shardings; the values come from the checkpoint). Waits
    up to ``RESTORE_WAIT_S`` for another run to finish writing it (orbax renames a
    checkpoint into place when it is complete)."""
    import orbax.checkpoint as ocp

    deadline = time.monotonic() + RESTORE_WAIT_S
    while not os.path.isdir(path):
        if time.monotonic() > deadline:
            sys.exit(f"--restore: no checkpoint at {path} after {RESTORE_WAIT_S} s")
        time.sleep(0.05)

    params = initial_params()
    template = {"params": params, "opt_state": OPTIMIZER.init(params)}
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                            sharding=parallel.replicated(mesh)), template)
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, target)


if __name__ == "__main__":
    main()
