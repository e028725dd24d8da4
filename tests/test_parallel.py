"""`jaxgru.parallel`: 8-way data parallelism equals one device; argument checks.

The 8-device scenarios are in `parallel_devices.py`; every test process has eight CPU
devices (conftest.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from parallel_devices import DEVICES, SCENARIOS

import jaxgru
from jaxgru import parallel

FLOAT32_TOLERANCE = 1e-5


def run_scenario(name: str) -> dict:
    assert jax.device_count() == DEVICES, f"needs {DEVICES} CPU devices (conftest.py), got {jax.device_count()}"
    return SCENARIOS[name]()


def test_loss_gradients_and_outputs_on_8_devices_equal_one_device():
    r = run_scenario("gradients")
    assert r["devices"] == 8
    assert r["loss_error"] < FLOAT32_TOLERANCE
    assert r["grad_error"] < FLOAT32_TOLERANCE
    assert r["grads_replicated"]
    assert r["forward_error"] < FLOAT32_TOLERANCE
    assert r["time_major_error"] < FLOAT32_TOLERANCE
    assert r["outputs_batch_sharded"]
    assert r["time_major_outputs_batch_sharded"]
    assert r["explicit_mesh_error"] < FLOAT32_TOLERANCE


def test_train_step_on_8_devices_keeps_batch_sharded_and_trains_as_one_device():
    r = run_scenario("train_step")
    assert r["devices"] == 8
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=FLOAT32_TOLERANCE)
    assert r["losses"][-1] < r["losses"][0]
    assert r["params_error"] < FLOAT32_TOLERANCE
    assert r["opt_state_error"] < FLOAT32_TOLERANCE
    assert r["batch_input_specs"] == ["('data',)"]
    assert r["params_replicated"]
    assert r["all_gathers"] == 0  # the batch is never gathered onto one device
    assert r["all_reduces"] > 0  # the gradients are summed across devices
    assert "this array was deleted" in r["donated_error"] and "donate=False" in r["donated_error"]


def test_dropout_masks_differ_per_shard_are_reproducible_and_device_count_independent():
    r = run_scenario("dropout")
    assert r["shards"] == 8 and r["shard_shape"] == [3, 2, 3]
    assert r["shards_differ"]
    assert r["reproducible"]
    assert r["equal_on_4_devices"] and r["equal_on_1_device"]
    assert 0.1 < r["zero_fraction"] < 0.4  # rate 0.25
    assert "divides over the 8 devices" in r["indivisible_batch_error"]


def test_flax_gru_trains_on_8_devices_as_on_one_device():
    r = run_scenario("flax")
    assert r["devices"] == 8
    np.testing.assert_allclose(r["losses"], r["reference_losses"], rtol=FLOAT32_TOLERANCE)
    assert r["params_error"] < FLOAT32_TOLERANCE


# ---------------------------------------------------------------- one device, in process
@pytest.fixture(scope="module")
def mesh():
    return parallel.data_mesh(jax.devices()[:1])


def test_data_mesh_is_one_auto_axis(mesh):
    assert mesh.axis_names == ("data",)
    assert mesh.axis_types == (jax.sharding.AxisType.Auto,)
    assert parallel.data_mesh(axis="batch").axis_names == ("batch",)


def test_shard_batch_places_every_leaf_by_its_batch_dim(mesh):
    batch = {"x": np.ones((2, 5, 3), np.float32), "mask": np.ones((5, 2), bool), "h0": np.zeros((2, 4))}
    placed = parallel.shard_batch(batch, mesh, batch_dim={"x": 0, "mask": 1, "h0": 0})
    assert placed["mask"].sharding.spec == jax.sharding.PartitionSpec(None, "data")
    assert placed["x"].sharding.spec == jax.sharding.PartitionSpec("data")
    np.testing.assert_array_equal(placed["mask"], batch["mask"])


def test_make_train_step_without_dropout_key_on_one_device(mesh):
    cell = jaxgru.GRUCell(4)
    params = cell.init(jax.random.key(0), 3)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)

    def loss_fn(params, x, key):
        return jnp.mean(jaxgru.rnn(cell, params, x, rng=key)[1] ** 2)

    optimizer = optax.sgd(0.1)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, jax.grad(loss_fn)(params, x, None))
    step = parallel.make_train_step(loss_fn, optimizer, mesh, constrain=lambda p: p, donate=False)
    new = step(params, optimizer.init(params), parallel.shard_batch(x, mesh), None)
    np.testing.assert_allclose(new.loss, loss_fn(params, x, None), rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), new.params, expected)


def test_bad_arguments_raise(mesh):
    with pytest.raises(ValueError, match="axis"):
        parallel.batch_sharding(mesh, axis="model")
    with pytest.raises(ValueError, match="batch_dim"):
        parallel.batch_sharding(mesh, batch_dim=-1)
    with pytest.raises(TypeError, match="mesh"):
        parallel.replicated(jax.devices())
    with pytest.raises(ValueError, match="devices"):
        parallel.data_mesh([])
    with pytest.raises(ValueError, match=r"batch\['h0'\].*dimension 1"):
        parallel.shard_batch({"h0": np.zeros((4,))}, mesh, batch_dim=1)
    with pytest.raises(TypeError, match="optimizer"):
        parallel.make_train_step(lambda p, b, k: 0.0, "adam", mesh)
