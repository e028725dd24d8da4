"""Recurrent PPO on CartPole with the velocities hidden, written the way purejaxrl writes it.

The whole training run is one `jax.jit` (`make_train`), `jax.vmap`-ed over seeds; the
environments are gymnax's, vmapped too. The observation keeps the cart position and the
pole angle and zeroes both velocities, so the agent has to remember: a memoryless agent
cannot tell which way the pole is falling.

The agent is ``obs -> Dense + relu -> GRU -> (Dense + relu -> policy logits, Dense + relu
-> value)``, purejaxrl's, with its CartPole hyperparameters (`Config`) but a learning
rate of 5e-4. Its memory is either

* ``"jaxgru"``: `jaxgru.GRUCell.step` with ``reset=done`` while acting, and one
  `jaxgru.rnn` call with ``resets=`` over each stored rollout while learning; or
* ``"flax"``: the same network on flax's ``nn.GRUCell``, as purejaxrl's ``ScannedRNN``
  writes it: ``h = where(reset[:, None], 0, h)`` before each step, in ``nn.scan`` over
  the rollout.

The GRU is initialised by ``nn.GRUCell.init`` and converted by `jaxgru.from_flax_linen`
inside the vmapped ``train`` (traced weights), so both agents start from the same weights.
Keras's ``reset_after=True`` cell has recurrent z and r biases that Flax's cell lacks; the
jaxgru agent keeps them at zero (`freeze_recurrent_gate_biases`), so it is exactly the
flax agent and both learn the same.

Requires gymnax (``pip install "jaxgru[examples]"``)::

    python examples/ppo_rnn.py --steps 1000000 --seeds 3 --memories jaxgru,none --out ppo_rnn.png
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any, NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgru

VISIBLE = jnp.array([1.0, 0.0, 1.0, 0.0])  # CartPole's (x, x_dot, theta, theta_dot): velocities hidden


class Config(NamedTuple):
    total_steps: int = 1_000_000
    num_envs: int = 4
    rollout: int = 128  # steps per environment per update
    epochs: int = 4
    minibatches: int = 4  # split along the environments: each replays whole rollouts
    hidden: int = 128
    lr: float = 5e-4  # purejaxrl's CartPole uses 2.5e-4 (benchmarks/RESULTS.md: both runs)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    memory: str = "jaxgru"  # "jaxgru", "flax" (ScannedRNN pattern) or "none" (no memory)

    @property
    def updates(self) -> int:
        return self.total_steps // (self.num_envs * self.rollout)


# --------------------------------------------------------------------------- the agent
def dense(key, n_in, n_out, scale):
    return {"w": nn.initializers.orthogonal(scale)(key, (n_in, n_out)), "b": jnp.zeros(n_out)}


def apply_dense(p, x):
    return x @ p["w"] + p["b"]


def init_agent(key, config: Config, obs_dim: int, actions: int) -> dict:
    """Params ``{"embed", "gru", "actor", "critic"}``; ``gru`` in jaxgru's layout, converted
    from a fresh ``nn.GRUCell`` (also inside `jax.vmap`: the converter takes traced weights)."""
    keys = jax.random.split(key, 5)
    h = config.hidden
    flax_gru = nn.GRUCell(h).init(keys[1], jnp.zeros((1, h)), jnp.zeros((1, h)))
    _, gru = jaxgru.from_flax_linen(flax_gru)
    more = jax.random.split(keys[4], 2)
    return {"embed": dense(keys[0], obs_dim, h, np.sqrt(2)), "gru": gru,
            "actor_hidden": dense(more[0], h, h, np.sqrt(2)), "actor": dense(keys[2], h, actions, 0.01),
            "critic_hidden": dense(more[1], h, h, np.sqrt(2)), "critic": dense(keys[3], h, 1, 1.0)}


CELL = jaxgru.GRUCell  # the cell of from_flax_linen: GRUCell(hidden, reset_after=True)


class Memory(NamedTuple):
    """``act(gru, h, x, reset) -> h`` one step; ``replay(gru, h0, xs, resets) -> (T, B, U)``."""
    act: Any
    replay: Any


def jaxgru_memory(hidden: int) -> Memory:
    cell = CELL(hidden)

    def act(gru, h, x, reset):
        return cell.step(gru, h, x, reset=reset)[0]

    def replay(gru, h0, xs, resets):
        return jaxgru.rnn(cell, gru, xs, initial_state=h0, resets=resets, time_major=True)[0]

    return Memory(act, replay)


class ScannedRNN(nn.Module):
    """purejaxrl's recurrent core: ``nn.scan`` over ``nn.GRUCell`` with where-resets."""
    hidden: int

    @functools.partial(nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False})
    @nn.compact
    def __call__(self, h, inputs):
        x, reset = inputs
        h = jnp.where(reset[:, None], jnp.zeros_like(h), h)
        return nn.GRUCell(self.hidden, name="cell")(h, x)


def flax_memory(hidden: int) -> Memory:
    """The same memory on flax: the jaxgru params are converted by `jaxgru.to_flax_linen`
    at every call (inside jit: free), so both agents share one params layout."""
    cell, scanned = nn.GRUCell(hidden), ScannedRNN(hidden)

    def act(gru, h, x, reset):
        h = jnp.where(reset[:, None], jnp.zeros_like(h), h)
        return cell.apply({"params": jaxgru.to_flax_linen(gru)}, h, x)[0]

    def replay(gru, h0, xs, resets):
        return scanned.apply({"params": {"cell": jaxgru.to_flax_linen(gru)}}, h0, (xs, resets))[1]

    return Memory(act, replay)


def no_memory(hidden: int) -> Memory:
    """A feed-forward agent (the embedding straight to the heads): the baseline."""
    return Memory(lambda gru, h, x, reset: x, lambda gru, h0, xs, resets: xs)


MEMORIES = {"jaxgru": jaxgru_memory, "flax": flax_memory, "none": no_memory}


def heads(params, features):
    """``(policy logits, value)`` of the memory's features."""
    actor = jax.nn.relu(apply_dense(params["actor_hidden"], features))
    critic = jax.nn.relu(apply_dense(params["critic_hidden"], features))
    return apply_dense(params["actor"], actor), apply_dense(params["critic"], critic)[..., 0]


def embed(params, obs):
    return jax.nn.relu(apply_dense(params["embed"], obs * VISIBLE))


# --------------------------------------------------------------------------- the optimizer
def recurrent_gate_bias_mask(params: dict) -> dict:
    """0 on the ``gru`` bias's recurrent z and r entries (``bias[1, :2U]``), 1 elsewhere."""
    mask = jax.tree.map(jnp.ones_like, params)
    units = params["gru"]["recurrent_kernel"].shape[0]
    mask["gru"]["bias"] = mask["gru"]["bias"].at[1, :2 * units].set(0.0)
    return mask


def freeze_recurrent_gate_biases() -> optax.GradientTransformation:
    """Zeroes the gradient of Keras's recurrent z/r biases (they stay at their initial
    zeros): Flax's GRU cell has no such biases. Put it first in the chain, so that
    gradient clipping sees the same global norm as the flax agent's."""
    return optax.stateless(lambda updates, params: jax.tree.map(
        lambda u, m: u * m, updates, recurrent_gate_bias_mask(params)))


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam with the learning rate annealed linearly to 0 over the run (purejaxrl's)."""
    steps = config.updates * config.epochs * config.minibatches
    return optax.chain(freeze_recurrent_gate_biases(), optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(optax.linear_schedule(config.lr, 0.0, max(1, steps)), eps=1e-5))


# --------------------------------------------------------------------------- PPO
class Transition(NamedTuple):
    reset: jax.Array  # (B,) the done that came with obs: the state is reset before this step
    obs: jax.Array
    action: jax.Array
    value: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array
    episode_return: jax.Array  # the return of an episode that ended at this step, else 0


def ppo_loss(params, memory: Memory, config: Config, h0, batch: Transition, advantages, targets):
    """PPO's clipped objective on whole rollouts ``(T, B)`` replayed from ``h0`` ``(B, U)``."""
    features = memory.replay(params["gru"], h0, embed(params, batch.obs), batch.reset)
    logits, value = heads(params, features)
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, batch.action[..., None], -1)[..., 0]
    value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip, config.clip)
    value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
    ratio = jnp.exp(log_prob - batch.log_prob)
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    actor_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv).mean()
    entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
    return actor_loss + config.value_coef * value_loss - config.entropy * entropy


def gae(batch: Transition, last_value, last_done, config: Config):
    def step(carry, t):
        advantage, next_value, next_done = carry
        delta = t.reward + config.gamma * next_value * (1 - next_done) - t.value
        advantage = delta + config.gamma * config.gae_lambda * (1 - next_done) * advantage
        return (advantage, t.value, t.reset.astype(jnp.float32)), advantage

    _, advantages = jax.lax.scan(step, (jnp.zeros_like(last_value), last_value, last_done.astype(jnp.float32)),
                                 batch, reverse=True)
    return advantages, advantages + batch.value


class Runner(NamedTuple):
    params: dict
    opt_state: Any
    env_state: Any
    obs: jax.Array
    done: jax.Array
    h: jax.Array
    episode_return: jax.Array
    key: jax.Array


def make_rollout(config: Config, env, env_params):
    """``rollout(runner) -> (runner, batch, h_start)``: ``config.rollout`` steps in
    ``config.num_envs`` environments, acting with the memory's one-step ``reset``;
    ``batch`` is time-major ``(T, B)``, ``h_start`` the ``(B, U)`` state it started from."""
    memory = MEMORIES[config.memory](config.hidden)

    def env_step(runner: Runner, _):
        key, act_key, step_key = jax.random.split(runner.key, 3)
        h = memory.act(runner.params["gru"], runner.h, embed(runner.params, runner.obs), runner.done)
        logits, value = heads(runner.params, h)
        action = jax.random.categorical(act_key, logits)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, config.num_envs), runner.env_state, action, env_params)
        done = terminated | truncated  # gymnax resets the environment itself; the memory resets next step
        episode_return = runner.episode_return + reward
        transition = Transition(runner.done, runner.obs, action, value, log_prob, reward, done,
                                jnp.where(done, episode_return, 0.0))
        runner = runner._replace(env_state=env_state, obs=obs, done=done, h=h, key=key,
                                 episode_return=jnp.where(done, 0.0, episode_return))
        return runner, transition

    def rollout(runner: Runner):
        end, batch = jax.lax.scan(env_step, runner, None, config.rollout)
        return end, batch, runner.h

    return rollout


def make_update(config: Config, env, env_params):
    """``update(runner) -> (runner, (mean return of the episodes that ended, mean loss))``:
    one rollout, then ``config.epochs`` epochs of ``config.minibatches`` minibatches of
    whole rollouts (replayed by the memory's ``replay`` with ``resets``)."""
    memory = MEMORIES[config.memory](config.hidden)
    optimizer = make_optimizer(config)
    grad_fn = jax.value_and_grad(ppo_loss)
    rollout = make_rollout(config, env, env_params)

    def update(runner: Runner):
        runner, batch, h_start = rollout(runner)
        features = memory.act(runner.params["gru"], runner.h, embed(runner.params, runner.obs), runner.done)
        advantages, targets = gae(batch, heads(runner.params, features)[1], runner.done, config)

        def epoch(carry, key):
            params, opt_state = carry
            order = jax.random.permutation(key, config.num_envs).reshape(config.minibatches, -1)

            def minibatch(carry, envs):
                params, opt_state = carry
                pick = functools.partial(jnp.take, indices=envs, axis=1)  # whole rollouts of some envs
                loss, grads = grad_fn(params, memory, config, h_start[envs], jax.tree.map(pick, batch),
                                      pick(advantages), pick(targets))
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            return jax.lax.scan(minibatch, (params, opt_state), order)

        key, epoch_key = jax.random.split(runner.key)
        (params, opt_state), losses = jax.lax.scan(epoch, (runner.params, runner.opt_state),
                                                   jax.random.split(epoch_key, config.epochs))
        ended = batch.done.sum()
        mean_return = jnp.where(ended > 0, batch.episode_return.sum() / jnp.maximum(ended, 1), jnp.nan)
        return runner._replace(params=params, opt_state=opt_state, key=key), (mean_return, losses.mean())

    return update


def make_env():
    return gymnax.make("CartPole-v1")


def init_runner(key, config: Config, env, env_params) -> Runner:
    params_key, env_key, key = jax.random.split(key, 3)
    params = init_agent(params_key, config, env.observation_space(env_params).shape[0],
                        env.action_space(env_params).n)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(env_key, config.num_envs), env_params)
    zeros = jnp.zeros(config.num_envs)
    return Runner(params, make_optimizer(config).init(params), env_state, obs, jnp.zeros(config.num_envs, bool),
                  jnp.zeros((config.num_envs, config.hidden)), zeros, key)


def make_train(config: Config):
    """``train(key) -> (mean episode return per update, mean loss per update)``: the whole
    run, to be jitted and vmapped over keys."""
    env, env_params = make_env()
    update = make_update(config, env, env_params)

    def train(key):
        runner = init_runner(key, config, env, env_params)
        _, metrics = jax.lax.scan(lambda r, _: update(r), runner, None, config.updates)
        return metrics

    return train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=Config().total_steps, help="environment steps per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--envs", type=int, default=Config().num_envs)
    parser.add_argument("--lr", type=float, default=Config().lr, help="Adam's initial learning rate")
    parser.add_argument("--memories", default="jaxgru,flax,none", help="agents to train, comma-separated")
    parser.add_argument("--out", default="ppo_rnn.png", help="learning-curve PNG")
    args = parser.parse_args(argv)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    curves = {}
    for memory in args.memories.split(","):
        config = Config(total_steps=args.steps, num_envs=args.envs, lr=args.lr, memory=memory)
        train = jax.jit(jax.vmap(make_train(config)))
        start = time.perf_counter()
        returns, _ = jax.block_until_ready(train(keys))
        seconds = time.perf_counter() - start
        returns = np.asarray(returns)
        final = np.nanmean(returns[:, -max(1, config.updates // 10):], axis=1)  # last 10% of the updates
        print(f"{memory:>6}: final mean return {final.mean():.1f} (per seed {[round(float(v), 1) for v in final]}), "
              f"{seconds:.0f} s including compilation, {config.updates} updates x {args.seeds} seeds")
        curves[memory] = returns
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = {"jaxgru": "jaxgru GRU", "flax": "flax ScannedRNN", "none": "no memory"}
    for memory, returns in curves.items():
        x = np.arange(1, returns.shape[1] + 1) * args.envs * Config().rollout
        mean = np.nanmean(returns, axis=0)
        ax.plot(x, mean, label=labels[memory], lw=1.2)
        ax.fill_between(x, np.nanmin(returns, axis=0), np.nanmax(returns, axis=0), alpha=0.15)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("episode return")
    ax.set_title(f"PPO, CartPole without velocities ({args.seeds} seeds: mean, min-max)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
