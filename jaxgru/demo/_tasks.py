"""The demo's two built-in sequence tasks; neither needs a download.

* ``adding``: the adding problem (Hochreiter & Schmidhuber, 1997). Each sequence has ``T``
  steps of two features: a value drawn from U[0, 1] and a marker that is 1 at exactly two
  steps (one in each half of the sequence) and 0 elsewhere. The target is the sum of the
  two marked values. Always predicting the mean sum, 1, scores MSE = Var(u1 + u2) = 2/12 ≈ 0.167
  in expectation; the baseline reported is that predictor's MSE on the fixed test set
  (0.174 for the default seed). Solving it requires remembering a value for up to ``T`` steps.
* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 images, shipped inside
  the ``scikit-learn`` package), read row by row: ``T = 8`` steps of ``D = 8`` pixels,
  10 classes. The baseline is always predicting the most frequent training class (~10%).

A `Task` holds everything the training loop needs and nothing it does: a batch sampler,
a fixed test set, the loss, the reported metric and its baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxgru.demo._extra import import_extra

__all__ = ["DEFAULT_SEQ_LEN", "TASKS", "Task", "accuracy", "adding_problem", "adding_task", "cross_entropy",
           "digits_task", "make_task", "mean_squared_error"]

TASKS = ("adding", "digits")
DEFAULT_SEQ_LEN = 100  # the adding problem's T
ADDING_TEST_SIZE = 1000
DIGITS_TEST_FRACTION = 0.2


class Task(NamedTuple):
    """A supervised sequence task.

    Attributes:
      name: "adding" or "digits".
      description: one line for the console.
      input_dim, output_dim: D of the inputs ``(B, T, D)``; size of the model's output.
      sample_batch: ``(key, batch_size) -> (x (B, T, D), y)``, jittable.
      test_x, test_y: the fixed held-out set.
      loss: ``(outputs (B, output_dim), y) -> scalar`` minimised in training.
      loss_name: what `loss` is, e.g. "MSE" or "cross-entropy".
      metric: ``(outputs, y) -> scalar`` reported against `baseline`.
      metric_name: e.g. "MSE" or "accuracy".
      higher_is_better: the direction of `metric`.
      baseline: the metric of the trivial predictor on the test set.
      baseline_name: what that trivial predictor is.
    """

    name: str
    description: str
    input_dim: int
    output_dim: int
    sample_batch: Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]
    test_x: jax.Array
    test_y: jax.Array
    loss: Callable[[jax.Array, jax.Array], jax.Array]
    loss_name: str
    metric: Callable[[ArrayLike, ArrayLike], jax.Array]
    metric_name: str
    higher_is_better: bool
    baseline: float
    baseline_name: str


def adding_problem(key: jax.Array, batch_size: int, seq_len: int) -> tuple[jax.Array, jax.Array]:
    """A batch of the adding problem: ``x`` ``(B, T, 2)`` and ``y`` ``(B, 1)``.

    ``x[..., 0]`` ~ U[0, 1]; ``x[..., 1]`` marks one step in ``[0, T//2)`` and one in
    ``[T//2, T)``; ``y`` is the sum of the two marked values. Needs ``T >= 2``.
    """
    key_values, key_first, key_second = jax.random.split(key, 3)
    values = jax.random.uniform(key_values, (batch_size, seq_len))
    half = seq_len // 2
    first = jax.random.randint(key_first, (batch_size, 1), 0, half)
    second = jax.random.randint(key_second, (batch_size, 1), half, seq_len)
    steps = jnp.arange(seq_len)
    markers = ((steps == first) | (steps == second)).astype(values.dtype)
    x = jnp.stack([values, markers], axis=-1)
    y = jnp.sum(values * markers, axis=1, keepdims=True)
    return x, y


def mean_squared_error(outputs: ArrayLike, y: ArrayLike) -> jax.Array:
    return jnp.mean(optax.squared_error(outputs, y))


def accuracy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def adding_task(seq_len: int, test_key: jax.Array) -> Task:
    """The adding problem with sequences of ``seq_len`` steps; its test set is drawn from ``test_key``."""
    if seq_len < 2:
        raise ValueError(f"seq_len: the adding problem needs at least 2 steps, got {seq_len}.")
    test_x, test_y = adding_problem(test_key, ADDING_TEST_SIZE, seq_len)
    baseline = float(mean_squared_error(jnp.ones_like(test_y), test_y))
    return Task(
        name="adding",
        description=f"adding problem, T={seq_len}: predict the sum of the two marked values",
        input_dim=2,
        output_dim=1,
        sample_batch=lambda key, batch_size: adding_problem(key, batch_size, seq_len),
        test_x=test_x,
        test_y=test_y,
        loss=mean_squared_error,
        loss_name="MSE",
        metric=mean_squared_error,
        metric_name="MSE",
        higher_is_better=False,
        baseline=baseline,
        baseline_name="always predicting the mean sum, 1",
    )


def digits_task(seed: int) -> Task:
    """scikit-learn's 8x8 digits as sequences of 8 rows of 8 pixels scaled to [0, 1].

    A stratified split (20% test) shuffled by ``seed``. Imports scikit-learn (the
    ``demo`` extra).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)  # (N, 8, 8): rows are time steps
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target.astype(np.int32), test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target, random_state=seed)
    train_x, train_y = jnp.asarray(train_x), jnp.asarray(train_y)
    majority = int(np.bincount(np.asarray(train_y)).argmax())

    def sample_batch(key, batch_size):
        index = jax.random.randint(key, (batch_size,), 0, train_x.shape[0])
        return train_x[index], train_y[index]

    return Task(
        name="digits",
        description="8x8 digits read row by row (T=8, D=8): classify into 10 classes",
        input_dim=8,
        output_dim=10,
        sample_batch=sample_batch,
        test_x=jnp.asarray(test_x),
        test_y=jnp.asarray(test_y),
        loss=cross_entropy,
        loss_name="cross-entropy",
        metric=accuracy,
        metric_name="accuracy",
        higher_is_better=True,
        baseline=float(np.mean(test_y == majority)),
        baseline_name=f"always predicting the most frequent class ({majority})",
    )


def make_task(name: str, seq_len: int | None, seed: int, test_key: jax.Array) -> Task:
    """The task called ``name``; ``seq_len`` (adding only) defaults to `DEFAULT_SEQ_LEN`.

    The adding problem draws its test set from ``test_key``; the digits split is shuffled by ``seed``.
    """
    if name == "adding":
        return adding_task(DEFAULT_SEQ_LEN if seq_len is None else seq_len, test_key)
    if name == "digits":
        if seq_len is not None:
            raise ValueError("seq_len: the digits task has a fixed length of 8 rows; seq_len applies to 'adding'.")
        import_extra("sklearn")
        return digits_task(seed)
    raise ValueError(f"task: expected one of {TASKS}, got {name!r}.")
