"""The demo's model and training loop: ``jaxgru.rnn`` and a dense head, trained with Adam.

Model: ``jaxgru.rnn`` (a Keras ``GRU(units, return_sequences=False)``) reads ``(B, T, D)``
and returns its last output ``(B, U)``; a dense head maps it to ``(B, output_dim)``.
Training: Adam on ``clip_by_global_norm`` gradients (optax), one `jax.jit`-compiled step
that also draws its own batch from ``fold_in(key, step)``, so a seed fixes the whole run.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgru._core.cell import GRUCell, Params
from jaxgru._core.recurrent import rnn
from jaxgru._core.validation import check_bool
from jaxgru.demo._extra import import_extra
from jaxgru.demo._tasks import Task

__all__ = ["BATCH_SIZE", "CLIP_NORM", "CONVENTIONS", "LEARNING_RATE", "TASK_SETTINGS", "History", "TaskSettings",
           "apply_model", "init_model", "train"]

CONVENTIONS = ("reset_after", "reset_before")  # where the reset gate applies
BATCH_SIZE = 64
LEARNING_RATE = 1e-2
CLIP_NORM = 1.0
EVALUATIONS = 20  # test-set evaluations over a run, for the learning curve
LOSS_SMOOTHING = 0.98  # the running loss shown in the progress bar: an EMA with this decay


class TaskSettings(NamedTuple):
    """Per-task defaults: GRU ``units`` and training ``steps``."""

    units: int
    steps: int


TASK_SETTINGS = {"adding": TaskSettings(units=32, steps=1500), "digits": TaskSettings(units=64, steps=600)}
DEFAULT_SEQ_LEN = 100  # the adding problem's T


class History(NamedTuple):
    """Training losses per step, ``(steps,)``: ``losses`` per batch and ``running_losses``
    their exponential moving average (the progress bar's loss); the test-set curve as
    ``eval_steps`` and ``eval_metrics`` (step 0 is the untrained model)."""

    losses: np.ndarray
    running_losses: np.ndarray
    eval_steps: np.ndarray
    eval_metrics: np.ndarray



# ---------------------------------------------------------------------------- model
def init_model(cell: GRUCell, key: jax.Array, input_dim: int, output_dim: int) -> dict[str, Params]:
    """``{"gru": cell params, "head": {"kernel": (U, O) Glorot uniform, "bias": (O,) zeros}}``."""
    key_gru, key_head = jax.random.split(key)
    return {
        "gru": cell.init(key_gru, input_dim),
        "head": {"kernel": jax.nn.initializers.glorot_uniform()(key_head, (cell.units, output_dim)),
                 "bias": jnp.zeros((output_dim,))},
    }


def apply_model(cell: GRUCell, params: dict[str, Params], x: jax.Array) -> jax.Array:
    """``x`` ``(B, T, D)`` -> ``(B, O)``: the GRU's last output through the dense head."""
    last_output, _ = rnn(cell, params["gru"], x, return_sequences=False)
    return last_output @ params["head"]["kernel"] + params["head"]["bias"]


def optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adam(LEARNING_RATE))


# ---------------------------------------------------------------------------- training
def train(cell: GRUCell, task: Task, steps: int, key: jax.Array, progress: bool = True):
    """Trains `apply_model` on ``task`` for ``steps`` batches; returns ``(params, History)``.

    ``key`` is split into the initialization key and the data key; batch ``i`` is drawn
    from ``fold_in(data_key, i)``.
    """
    check_bool(progress, "progress")
    tqdm = import_extra("tqdm").tqdm
    key_init, key_data = jax.random.split(key)
    params = init_model(cell, key_init, task.input_dim, task.output_dim)
    tx = optimizer()
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, step):
        x, y = task.sample_batch(jax.random.fold_in(key_data, step), BATCH_SIZE)
        loss, grads = jax.value_and_grad(lambda p: task.loss(apply_model(cell, p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(lambda params: task.metric(apply_model(cell, params, task.test_x), task.test_y))
    eval_every = max(1, steps // EVALUATIONS)
    losses, running_losses = np.empty(steps), np.empty(steps)
    eval_steps, eval_metrics = [0], [float(evaluate(params))]
    ema = 0.0  # on host floats: the loss is fetched every step for the bar anyway
    with tqdm(range(steps), desc=f"training on {task.name}", unit="step", disable=not progress) as bar:
        for step in bar:
            params, opt_state, loss = train_step(params, opt_state, step)
            losses[step] = float(loss)
            ema = LOSS_SMOOTHING * ema + (1 - LOSS_SMOOTHING) * losses[step]
            running_losses[step] = ema / (1 - LOSS_SMOOTHING ** (step + 1))  # bias-corrected, as in Adam
            bar.set_postfix(loss=f"{running_losses[step]:.4g}", refresh=False)
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                eval_steps.append(step + 1)
                eval_metrics.append(float(evaluate(params)))
    return params, History(losses, running_losses, np.asarray(eval_steps), np.asarray(eval_metrics))
