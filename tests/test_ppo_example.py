"""examples/ppo_rnn.py at a tiny size: a few PPO updates of the jaxgru agent (acting with
``cell.step(reset=)``, replaying with ``rnn(resets=)``) equal the same agent on flax's
``nn.GRUCell`` in ``nn.scan`` with where-resets (purejaxrl's ScannedRNN), same weights:
losses, gradients and the trained params, on gymnax's CartPole."""

import importlib.util
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ppo_rnn.py"
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def ppo():
    spec = importlib.util.spec_from_file_location("ppo_rnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclass modules look their module up
    spec.loader.exec_module(module)
    return module


def test_a_few_updates_equal_the_flax_scanned_rnn_agent(ppo):
    tiny = dict(num_envs=4, rollout=16, epochs=2, minibatches=2, hidden=8)
    configs = {memory: ppo.Config(memory=memory, **tiny) for memory in ("jaxgru", "flax")}
    env, env_params = ppo.make_env()
    runner = ppo.init_runner(jax.random.key(0), configs["jaxgru"], env, env_params)
    updates = {m: jax.jit(ppo.make_update(c, env, env_params)) for m, c in configs.items()}
    runners = dict.fromkeys(configs, runner)
    for _ in range(3):
        metrics = {}
        for memory, update in updates.items():
            runners[memory], metrics[memory] = update(runners[memory])
        np.testing.assert_allclose(metrics["jaxgru"][1], metrics["flax"][1], **TOLERANCE)  # mean loss
        np.testing.assert_allclose(metrics["jaxgru"][0], metrics["flax"][0])  # the same episodes
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE),
                     runners["jaxgru"].params, runners["flax"].params)

    # the gradients of one PPO loss over a rollout with resets, the frozen biases masked
    rollout = jax.jit(ppo.make_rollout(configs["jaxgru"], env, env_params))
    end, batch, h_start = rollout(runners["jaxgru"])
    assert batch.reset.any()
    advantages, targets = ppo.gae(batch, batch.value[-1], end.done, configs["jaxgru"])
    grads = {}
    for memory, config in configs.items():
        loss, grad = jax.jit(jax.value_and_grad(ppo.ppo_loss), static_argnums=(1, 2))(
            end.params, ppo.MEMORIES[memory](config.hidden), config, h_start, batch, advantages, targets)
        grads[memory] = loss, jax.tree.map(lambda g, m: g * m, grad, ppo.recurrent_gate_bias_mask(grad))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), grads["jaxgru"], grads["flax"])
