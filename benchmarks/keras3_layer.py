"""Times ``jaxgru.keras.GRU`` against ``keras.layers.GRU`` in the same Keras 3 model (JAX backend).

    python -m benchmarks.keras3_layer                 # the full run (a few minutes on 2 CPU cores)
    python -m benchmarks.keras3_layer --quick         # a smoke run at tiny shapes
    python -m benchmarks.keras3_layer --out keras3.md

The model is ``Sequential([Input((T, D)), (Masking(0.0),) GRU(U), Dense(1)])`` compiled with
``jit_compile=True`` (SGD, mse), once with each GRU class and the same weights, at each
``(B, T, D, U)``, without a mask and with right padding (lengths drawn in ``[T/2, T]``,
padded with zeros that the Masking layer turns into Keras's mask). Timed: one training
step (``train_on_batch``, what every step of ``model.fit`` runs) and ``predict_on_batch``.

Method: both models are built, compiled and warmed up in one process, then timed in
alternating rounds (the order flips every round; a round times back-to-back calls lasting
at least 0.2 s); a model's time is its median over rounds. Ratio = jaxgru's time / Keras's
time (below 1: jaxgru's layer is faster).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"

import argparse
import statistics
import time

import keras
import numpy as np

from jaxgru.keras import GRU

SHAPES = ((32, 100, 64, 128), (256, 50, 128, 256))
QUICK_SHAPES = ((4, 6, 3, 5),)


def build(layer_class, shape, masked, weights=None):
    batch, steps, features, units = shape
    keras.utils.set_random_seed(0)
    layers = [keras.Input((steps, features))] + ([keras.layers.Masking(0.0)] if masked else [])
    model = keras.Sequential(layers + [layer_class(units), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse", jit_compile=True)
    if weights is not None:
        model.set_weights(weights)
    return model


def data(shape, masked, seed=0):
    batch, steps, features, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, features)).astype(np.float32)
    if masked:
        lengths = rng.integers(steps // 2, steps + 1, size=batch)
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    return x, rng.normal(size=(batch, 1)).astype(np.float32)


def per_call(fn, min_seconds):
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def measure(shape, masked, rounds, min_seconds):
    x, y = data(shape, masked)
    keras_model = build(keras.layers.GRU, shape, masked)
    jaxgru_model = build(GRU, shape, masked, keras_model.get_weights())
    np.testing.assert_allclose(jaxgru_model.predict_on_batch(x), keras_model.predict_on_batch(x), rtol=1e-4,
                               atol=1e-4)
    models = {"keras": keras_model, "jaxgru": jaxgru_model}
    tasks = {"train": lambda m: (lambda: float(m.train_on_batch(x, y))),
             "predict": lambda m: (lambda: np.asarray(m.predict_on_batch(x)))}
    times: dict = {(task, name): [] for task in tasks for name in models}
    for make in tasks.values():
        for model in models.values():
            for _ in range(3):  # compile and warm up
                make(model)()
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for task, make in tasks.items():
            for name in order:
                times[task, name].append(per_call(make(models[name]), min_seconds))
    return {task: {name: statistics.median(times[task, name]) for name in models} for task in tasks}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    shapes, rounds, min_seconds = (QUICK_SHAPES, 1, 0.01) if args.quick else (SHAPES, args.rounds, 0.2)
    lines = ["| (B, T, D, U) | mask | train step Keras (ms) | jaxgru (ms) | ratio | predict Keras (ms) | "
             "jaxgru (ms) | ratio |", "|---|---|---|---|---|---|---|---|"]
    for shape in shapes:
        for masked in (False, True):
            result = measure(shape, masked, rounds, min_seconds)
            cells = []
            for task in ("train", "predict"):
                k, j = result[task]["keras"], result[task]["jaxgru"]
                cells += [f"{1e3 * k:.2f}", f"{1e3 * j:.2f}", f"{j / k:.2f}x"]
            lines.append(f"| {shape} | {'right-padded' if masked else 'none'} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
